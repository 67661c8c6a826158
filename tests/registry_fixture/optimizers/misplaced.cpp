// Fixture for the registration scan (cmake/RatelabRegistry.cmake), never compiled: the test
// registration_scan_rejects_misplaced_lines expects the scan to reject lines 9, 12 and 14 and nothing else.
// A mention in a comment is not a registration line: RATELAB_REGISTER_OPTIMIZER(commented, A, B, "c")
/* RATELAB_REGISTER_OPTIMIZER(block_comment, A, B, "c")
 * RATELAB_REGISTER_OPTIMIZER(block_comment_continued, A, B, "c") */
auto unbalanced = "[";
RATELAB_REGISTER_OPTIMIZER(fine, Fine, FineOptions, "registered")

  RATELAB_REGISTER_OPTIMIZER(indented, Indented, IndentedOptions, "never registered")

namespace fixture {
namespace inner { RATELAB_REGISTER_OPTIMIZER(after_code, AfterCode, AfterCodeOptions, "never registered") }
}  // namespace fixture
RATELAB_REGISTER_OPTIMIZER(
    split, Split, SplitOptions, "the key on the next line: the scan cannot read it")
