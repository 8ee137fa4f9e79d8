/*
 * elf_plt.h - name the PLT stubs of an x86-64 ELF file "FUNC@plt".
 *
 * A call to a shared library's function goes through a stub in the
 * caller's PLT; a sample there would otherwise read "exe+0x1050", and that
 * address moves between builds.  perf, objdump and llvm-symbolizer name
 * such a stub after the function it jumps to, and so does Ember.
 */
#ifndef EMBER_SYMBOLIZER_ELF_PLT_H
#define EMBER_SYMBOLIZER_ELF_PLT_H

#include <stdint.h>

struct Elf;

/* Called once per named stub: its ELF address, size and name ("puts@plt"). */
typedef int (*ember_plt_fn)(void *arg, uint64_t addr, uint64_t size, const char *name);

/*
 * Find the PLT stubs of elf and call fn for each (x86-64 only; other
 * machines have none found).  Stops at and returns fn's first non-zero
 * return; else returns 0.  Malformed sections are skipped, never trusted.
 */
int ember_elf_plt_symbols(struct Elf *elf, ember_plt_fn fn, void *arg);

#endif
