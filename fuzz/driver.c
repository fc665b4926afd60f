/* Runs a fuzz target over files (a seed corpus), for builds without
 * libFuzzer: `decode-run FILE...`. Prints the closing count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int ran = 0;
    for (int k = 1; k < argc; k++) {
        FILE *f = fopen(argv[k], "rb");
        if (!f) {
            perror(argv[k]);
            return 1;
        }
        uint8_t buf[65536];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        ran++;
    }
    printf("fuzz corpus: %d inputs ran without a crash\n", ran);
    return ran ? 0 : 1;
}
