/* The Windows side of tapepath's SPTI layout check (tests/transport/test_spti_layout.py).
 *
 * The test generates a C file that includes this header and holds _Static_asserts of the
 * sizes and offsets the Python ctypes structures have; compiling it with mingw-w64 for
 * x86_64 and i686 proves the Python layouts equal the ones <ntddscsi.h> gives.
 * TAPEPATH_SENSE_MAX comes from the Python module on the compiler's command line.
 */
#ifndef TAPEPATH_SPTI_LAYOUT_H
#define TAPEPATH_SPTI_LAYOUT_H

#include <stddef.h>
#include <windows.h>
#include <ntddscsi.h>

#ifndef TAPEPATH_SENSE_MAX
#error "compile with -DTAPEPATH_SENSE_MAX=<spti_struct.SENSE_MAX>"
#endif

/* The transport's one block: the pass-through structure, then its sense buffer. */
typedef struct {
    SCSI_PASS_THROUGH_DIRECT sptd;
    ULONG Filler;
    UCHAR SenseBuf[TAPEPATH_SENSE_MAX];
} TAPEPATH_SPTD_WITH_SENSE;

#define TAPEPATH_FIELD_SIZE(type, member) sizeof(((type *)0)->member)

#endif
