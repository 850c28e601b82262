"""crsky: the course package. Simulate cosmic-ray sky maps, load them, build and
evaluate the reference DGCNN, and plot the results.

Modules, one job each:
    crsky.sky         unit vectors, longitude/latitude, random directions
    crsky.spectrum    the Auger 2020 energy spectrum and the energy feature
    crsky.deflection  galactic magnetic field (JF12) and deflections
    crsky.simulate    the sky-map simulator and its command line
    crsky.dataset     the cr_sphere file format, validation and loading
    crsky.baseline    the pair-count statistic (a classical baseline)
    crsky.models      the textbook's kernel network and reference DGCNN
    crsky.plots       sky maps, training curves, ROC
    crsky.main        the main job: simulate, train, evaluate, plot
"""

__version__ = "0.1.0"
