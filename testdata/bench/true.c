/* true: the trivial target for start-time benchmarks. */
int main(void) { return 0; }
