// Test-only stand-in for Windows' bcryptprimitives.dll under Wine 8, which lacks it. Rust's std
// (1.78 and later) asks ProcessPrng for random bytes; Windows 10 and later have it. This forwards
// to advapi32's RtlGenRandom (exported as SystemFunction036), which Wine has. Built with mingw-w64
// by scripts/platforms.sh into the Wine prefix's system32; never shipped.
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  // RtlGenRandom takes a ULONG; a larger request is served in pieces.
  while (length > 0) {
    ULONG piece = length > 0x10000000 ? 0x10000000 : (ULONG)length;
    if (!SystemFunction036(data, piece)) return FALSE;
    data += piece;
    length -= piece;
  }
  return TRUE;
}
