"""crsky: the course package. Simulate cosmic-ray sky maps, load them, build and evaluate
the reference DGCNN, compare it with classical statistics, plot the results, grade.

Modules, one job each (docs/architecture.md draws how they depend on each other):
    crsky.experiment  the course's set-up: preset, data seed, sizes, splits, held-out maps
    crsky.sky         unit vectors, longitude/latitude, random and smeared directions, exposure
    crsky.spectrum    the Auger 2020 energy spectrum and the energy feature
    crsky.deflection  galactic magnetic field (JF12) and deflections
    crsky.presets     the simulation parameters and the named presets
    crsky.simulate    the sky-map simulator and its command line
    crsky.fileformat  the cr_sphere file format: writing, validating, reading
    crsky.dataset     loading sky maps: simulated and cached, the textbook's file, local files
    crsky.baseline    classical statistics (pair and multiplet counts, energy-aware multiplets), the baselines to beat
    crsky.leakcheck   label-leak checks of simulated data (statistics that are not streets)
    crsky.models      the textbook's kernel network, the reference DGCNN, its inputs
    crsky.training    the training recipe and evaluation
    crsky.plots       sky maps, training curves, ROC curves, graphs on the sky
    crsky.course      helpers the notebooks share: quiet logs, the size switch, where the course lives
    crsky.main        the main job: simulate, train, evaluate, plot
    crsky.scoring     the scoring rule of a saved model (held-out accuracy against the pair count)
    crsky.selfcheck   the students' self-check: run a notebook as the grader does
    crsky.submit      the zip a student hands in    crsky.colab  Colab's notebook format
    crsky.grading     the instructors' side: nbgrader's steps, the sandbox, the pipeline

The EdgeConv layer itself is the top-level module ``edgeconv``.
"""

__version__ = "0.1.0"
