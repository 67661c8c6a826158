/* A shared library that is not a ratelab plugin. */
int not_a_plugin(void) { return 42; }
