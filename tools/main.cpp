// The `ratelab` executable: the command table and the commands are in tools/cli.{hpp,cpp}.
#include "tools/cli.hpp"

int main(int argc, char** argv) { return ratelab::cli::run(argc, argv); }
