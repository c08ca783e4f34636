#include <stdio.h>
int main(void) { puts("edgeplane"); return 0; }
