// SwiftPM links every executable with a `main` of its own, so the fuzz targets cannot take
// libFuzzer's: they link libFuzzer without it (fuzzer_no_main) and start it here.
#include "CFuzzDriver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

int toolcfg_fuzz_main(int argc, char **argv, int (*test_one)(const uint8_t *data, size_t size)) {
    return LLVMFuzzerRunDriver(&argc, &argv, test_one);
}
