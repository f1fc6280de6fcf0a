// Proof that the sanitized build still checks our code for undefined
// behaviour although tests/ubsan_ignorelist.txt exempts the system headers:
// a lambda of ours, called from a standard-library template, overflows a
// signed int. ctest `sanitizers.ubsan_checks_our_code` expects UBSan's
// report; a build that lost the check exits 0 without it and fails.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <vector>

int main(int argc, char**) {
  // argc keeps the compiler from folding the overflow away.
  std::vector<int> v = {INT_MAX - argc + 1};
  std::for_each(v.begin(), v.end(), [](int& x) { x = x + 1; });
  std::printf("no report: %d\n", v[0]);
  return 0;
}
