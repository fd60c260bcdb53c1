// prctl is variadic, which Swift cannot call: these two wrap it (and setrlimit beside it).
#include "CFastPBKDF2.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int toolcfg_forbid_core_dumps(void) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return errno;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return errno;
    return 0;
}

int toolcfg_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}
