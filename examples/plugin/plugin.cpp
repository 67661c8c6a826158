// The whole plugin: the optimizers' code plus one export line.
#include "core/plugin_sdk.hpp"
#include "example_optimizers.hpp"

RATELAB_PLUGIN("example-optimizers", "1.0.0",
               RATELAB_PLUGIN_OPTIMIZER(adagrad, example::AdaGrad, example::AdaGradOptions,
                                        "AdaGrad (diagonal): x_{t+1} = x_t - eta_t g_t / (eps + sqrt(sum_s g_s^2))"),
               RATELAB_PLUGIN_OPTIMIZER(coordinate_sgd, example::CoordinateSgd, example::CoordinateSgdOptions,
                                        "randomized coordinate SGD: x_{t+1} = x_t - eta_t [g_t]_i e_i, i uniform"))
