"""The benchmarks: scripts that print figures and ratios against a baseline of the same run.
Run each from the repository root as a module, e.g. ``python -m bench.all``:

    bench.all             the CPU benchmarks below in one run, headline figures at the end
    bench.bench_training  ms/step and peak memory of the reference model per Keras backend
    bench.simulator       simulator throughput (maps/s) and peak memory
    bench.grading         grading cost per submission for a generated class
    bench.grading_spread  honest models from several seeds under the grading rule (the margin's basis)
    bench.notebooks       each solution notebook executed and timed at a size
    bench.knn_methods     ways to find the k nearest neighbours, alone and in training
    bench.training_recipes  notebook 3's CPU recipe against the faster one: levers and time to accuracy
    bench.recipe_grid     test accuracy of training recipes (batch, epochs, rate) over seeds
    bench.calibrate       the reference DGCNN against the classical baseline, per preset
    bench.calibrate_gpu   candidate settings: the DGCNN (energies as they are and permuted) against
                          every classical baseline on the same test maps (GPU size by default)
    bench.classical       the classical baselines alone per setting, and how much the energies carry
    bench.energy_scaling  the reference DGCNN with EnergyScaling at several reference fields, or without
    bench.leaks           the label-leak check of every preset (this simulator or another checkout's)
    bench.gpu_check       on a GPU machine: recipes, the step without Keras' loop, a PyTorch peer

Helpers only benchmarks use live here too (``bench.naive_edgeconv``).
"""
