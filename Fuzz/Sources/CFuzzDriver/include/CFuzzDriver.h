#ifndef TOOLCFG_CFUZZDRIVER_H
#define TOOLCFG_CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>
/// Runs libFuzzer (linked without its own main) on `test_one`, with the process's arguments.
int toolcfg_fuzz_main(int argc, char **argv, int (*test_one)(const uint8_t *data, size_t size));
#endif
