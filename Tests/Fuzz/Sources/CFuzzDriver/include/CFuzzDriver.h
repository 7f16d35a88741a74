// libFuzzer's driver entry (compiler-rt, linked by -sanitize=fuzzer). SwiftPM links an executable
// with main aliased to <Target>_main, so each harness defines that symbol and hands over to this.
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
