"""The sky-map simulator: isotropic maps and maps with cosmic-ray "streets".

A sky map holds ``n_events`` (500) cosmic rays above ``emin_eev`` (40 EeV), energies
from the Auger 2020 spectrum. An isotropic map (label 0) is pure background. In a
signal map (label 1) ``n_sources`` sources at isotropic positions contribute on
average ``signal_fraction`` of the cosmic rays: each source's count is Poisson
distributed around its share (equal shares, or shares from a Euclidean distribution
of source fluxes). Each cosmic ray is deflected away from its source by ``Z / E``
times the deflection model (a street, high energies nearest the source), then
Fisher-smeared by the turbulent field (``smearing_deg_eev * Z / E``) and the detector
resolution. The detector's exposure and the field's magnification are applied once,
as the probability of recording each emitted cosmic ray, so that signal cosmic rays
follow the same large-scale distribution over the sky as the background: no
statistic other than the streets themselves tells the classes apart.

Each block of ``BLOCK_SIZE`` maps is drawn from its own random stream derived from
(seed, block index): the same seed and parameters give byte-identical maps whatever
the chunking or number of processes, and the first m maps of a larger set are the
m-map set.

Command line::

    python -m crsky.simulate --preset textbook --n-maps 50000 --seed 1 -o data/sky.npz
"""

import argparse
import multiprocessing
import sys
import time

import numpy as np

from crsky import deflection as deflection_models
from crsky import experiment
from crsky.fileformat import write_maps
from crsky.presets import PRESETS, as_parameters
from crsky.sky import auger_exposure, exposure_weighted_directions, fisher_smear, isotropic_directions, \
    mean_exposure
from crsky.spectrum import EMAX_EEV, EnergySampler, energy_feature

SIMULATOR_VERSION = "2.0"
# 2.0: Poisson source multiplicities and source flux distributions; sources at isotropic
#      positions whatever the exposure; the exposure and the JF12 lens's magnification
#      applied once, as recording probabilities (1.x: the exposure weighted the source
#      positions and thinned their cosmic rays again, and every JF12 source gave the same
#      count whatever the field's focusing: both told signal maps apart by their
#      large-scale distribution).
BLOCK_SIZE = 250  # maps per random stream; fixed so that chunking cannot change results
MAGNIFICATION_CAP = 8.0  # |det J| of the JF12 lens above this is clipped (protons at 40 EeV: 0.03 % of the sky)
EUCLIDEAN_FLUX_RANGE = 100.0  # brightest / faintest source flux in the "euclidean" distribution


def _deflection_model(params):
    if params.deflection == "jf12":
        return deflection_models.JF12Lens(scale=params.deflection_deg_eev)
    return deflection_models.ConstantDeflection(params.deflection_deg_eev)


def simulate_block(params, seed, block):
    """Simulate block number ``block`` (``BLOCK_SIZE`` maps).

    Returns a dict of arrays: ``data`` float32 (B, n_events, 4) = (x, y, z, normalised
    energy); ``label`` int32 (B,); ``source_id`` int8 (B, n_events), -1 for background
    and the source index otherwise; ``source_direction`` float32 (B, n_sources, 3),
    NaN in isotropic maps.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(block,)))
    n_maps, n_events, n_sources = BLOCK_SIZE, params.n_events, params.n_sources
    exposure = auger_exposure if params.exposure == "auger" else None
    sample_energy = _energy_sampler(params.emin_eev)

    label = rng.permutation(np.arange(n_maps) % 2).astype(np.int32)
    directions = exposure_weighted_directions(rng, (n_maps, n_events), exposure)
    energies = sample_energy(rng, (n_maps, n_events))
    source_id = np.full((n_maps, n_events), -1, dtype=np.int8)
    # Sources sit anywhere on the sky: where the detector does not look, their cosmic rays
    # are simply not recorded (below). Positions are drawn for every map, so that the
    # random stream does not depend on the labels' order.
    sources = isotropic_directions(rng, (n_maps, n_sources))
    share = _source_shares(rng, params, n_maps)  # (n_maps, n_sources), rows sum to 1

    # Signal cosmic rays: emitted, deflected, smeared, then recorded with the probability
    # of the exposure where they land times the lens's magnification (over its cap).
    signal_maps = np.flatnonzero(label == 1)
    model = _deflection_model(params)
    streets = model.street_directions(rng, sources)
    n_signal = params.signal_fraction * n_events
    if params.multiplicity == "fixed":
        emitted = _fixed_counts(int(round(n_signal)), share[signal_maps])
        boost = 1.0
    else:
        boost = _recording_boost(params)
        emitted = rng.poisson(n_signal * boost * share[signal_maps])
    map_index = np.repeat(np.repeat(signal_maps, n_sources), emitted.reshape(-1))
    source_index = np.repeat(np.tile(np.arange(n_sources), len(signal_maps)), emitted.reshape(-1))
    charge_values = np.array([z for z, _ in params.charges], dtype=float)
    charge_weights = np.array([w for _, w in params.charges], dtype=float)
    charge = charge_values[rng.choice(len(charge_values), size=len(map_index), p=charge_weights / charge_weights.sum())]
    energy = sample_energy(rng, len(map_index))
    rigidity_inverse = charge / energy  # Z / E in 1/EeV
    origin = sources[map_index, source_index]
    street = None if streets is None else streets[map_index, source_index]
    arrival = model.deflect(origin, street, rigidity_inverse)
    spread = np.radians(np.hypot(params.smearing_deg_eev * rigidity_inverse, params.resolution_deg))
    arrival = fisher_smear(rng, arrival, spread)
    if boost != 1.0:
        probability = np.ones(len(arrival))
        if exposure is not None:
            probability *= exposure(arrival)
        if params.deflection == "jf12":
            magnification = np.minimum(model.magnification(origin, street, rigidity_inverse), MAGNIFICATION_CAP)
            probability *= np.minimum(1.0, magnification * _jf12_cap_factor(params) / MAGNIFICATION_CAP)
        recorded = rng.random(len(arrival)) < probability
        map_index, source_index = map_index[recorded], source_index[recorded]
        arrival, energy = arrival[recorded], energy[recorded]

    # The recorded cosmic rays of map m take its first slots (the rest keep the background
    # drawn there); a map cannot hold more than n_events of them.
    first = np.searchsorted(map_index, map_index, side="left")
    slot = np.arange(len(map_index)) - first
    inside = slot < n_events
    map_index, slot = map_index[inside], slot[inside]
    directions[map_index, slot] = arrival[inside]
    energies[map_index, slot] = energy[inside]
    source_id[map_index, slot] = source_index[inside]

    # Shuffle each map so that the position of a cosmic ray in the list carries no label.
    order = np.argsort(rng.random((n_maps, n_events)), axis=1)
    directions = np.take_along_axis(directions, order[..., None], axis=1)
    energies = np.take_along_axis(energies, order, axis=1)
    source_id = np.take_along_axis(source_id, order, axis=1)

    data = np.empty((n_maps, n_events, 4), dtype=np.float32)
    data[..., :3] = directions
    data[..., 3] = energy_feature(energies)
    source_direction = sources.astype(np.float32)
    source_direction[label == 0] = np.nan
    return {"data": data, "label": label, "source_id": source_id, "source_direction": source_direction}


_MEAN_EXPOSURE = {}


def _source_shares(rng, params, n_maps):
    """Each source's share of a map's signal, ``(n_maps, n_sources)``, rows summing to 1."""
    if params.source_flux == "equal":
        return np.full((n_maps, params.n_sources), 1.0 / params.n_sources)
    # dN/dS ~ S^-5/2 (N(>S) ~ S^-3/2) between 1 and EUCLIDEAN_FLUX_RANGE, by inversion.
    u = rng.random((n_maps, params.n_sources))
    flux = (1.0 - u * (1.0 - EUCLIDEAN_FLUX_RANGE ** -1.5)) ** (-2.0 / 3.0)
    return flux / flux.sum(axis=1, keepdims=True)


def _fixed_counts(total, share):
    """Exactly ``total`` cosmic rays per map shared out by ``share`` (largest remainders)."""
    exact = total * share
    counts = np.floor(exact).astype(np.int64)
    remainder = total - counts.sum(axis=1)
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    rank = np.argsort(order, axis=1, kind="stable")
    counts += rank < remainder[:, None]
    return counts


def _recording_boost(params):
    """How many cosmic rays are emitted per recorded one on average: 1 / (mean recording
    probability). The exposure records a fraction <exposure> of an isotropic flux; the
    JF12 lens's magnification averages to 1 but is capped, so cosmic rays are emitted
    MAGNIFICATION_CAP times as often and recorded with probability |det J| / cap."""
    boost = 1.0
    if params.exposure == "auger":
        if "auger" not in _MEAN_EXPOSURE:
            _MEAN_EXPOSURE["auger"] = mean_exposure(auger_exposure)
        boost /= _MEAN_EXPOSURE["auger"]
    if params.deflection == "jf12":
        boost *= MAGNIFICATION_CAP
    return boost


_JF12_CAP_FACTOR = {}


def _jf12_cap_factor(params):
    """1 / <min(|det J|, cap)>: corrects the recording probability for the magnification
    lost above the cap (a fraction of a percent), measured once per parameter set on an
    isotropic sample of sources at energies from the spectrum."""
    key = (params.deflection_deg_eev, params.charges, params.emin_eev)
    if key not in _JF12_CAP_FACTOR:
        rng = np.random.default_rng(12345)
        model = _deflection_model(params)
        n = 20000
        origin = isotropic_directions(rng, (n,))
        values = np.array([z for z, _ in params.charges], dtype=float)
        weights = np.array([w for _, w in params.charges], dtype=float)
        charge = values[rng.choice(len(values), size=n, p=weights / weights.sum())]
        rigidity_inverse = charge / _energy_sampler(params.emin_eev)(rng, n)
        magnification = model.magnification(origin, None, rigidity_inverse)
        _JF12_CAP_FACTOR[key] = float(1.0 / np.mean(np.minimum(magnification, MAGNIFICATION_CAP)))
    return _JF12_CAP_FACTOR[key]


_SAMPLERS = {}


def _energy_sampler(emin_eev):
    if emin_eev not in _SAMPLERS:
        _SAMPLERS[emin_eev] = EnergySampler(emin_eev, EMAX_EEV)
    return _SAMPLERS[emin_eev]


def _block_task(arguments):
    return simulate_block(*arguments)


def _progress_bar(**kwargs):
    """tqdm's notebook bar where it can draw one (ipywidgets installed), else the text bar,
    without tqdm.auto's "IProgress not found" warning on stderr."""
    try:
        import ipywidgets  # noqa: F401

        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(**kwargs)


def check_request(n_maps, seed):
    """Raise a ValueError for a map count or seed the simulator cannot take."""
    if isinstance(n_maps, bool) or not isinstance(n_maps, (int, np.integer)) or n_maps < 1:
        raise ValueError(f"n_maps must be a positive integer, got {n_maps!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")


def iter_chunks(params, n_maps, seed, chunk_size=5000, processes=1, progress=True):
    """Yield ``(start, arrays)`` for consecutive chunks of at most ``chunk_size`` maps
    (rounded up to whole blocks) covering maps ``0 .. n_maps - 1``."""
    check_request(n_maps, seed)
    blocks_per_chunk = max(1, -(-int(chunk_size) // BLOCK_SIZE))
    n_blocks = -(-n_maps // BLOCK_SIZE)
    pool = multiprocessing.get_context("spawn").Pool(processes) if processes > 1 else None
    try:
        bar = _progress_bar(total=n_maps, unit="maps", desc="simulating", disable=not progress, file=sys.stderr)
        for first in range(0, n_blocks, blocks_per_chunk):
            tasks = [(params, int(seed), b) for b in range(first, min(first + blocks_per_chunk, n_blocks))]
            blocks = pool.map(_block_task, tasks) if pool else [simulate_block(*t) for t in tasks]
            arrays = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
            start = first * BLOCK_SIZE
            stop = min(start + len(arrays["label"]), n_maps)
            arrays = {key: value[: stop - start] for key, value in arrays.items()}
            bar.update(stop - start)
            yield start, arrays
        bar.close()
    finally:
        if pool:
            pool.close()
            pool.join()


def simulate(params=experiment.PRESET, n_maps=1000, seed=experiment.DATA_SEED, chunk_size=5000, processes=1,
             progress=False):
    """Simulate ``n_maps`` sky maps in memory. ``params``: a preset name or :class:`SkyParameters`.

    Returns a dict: ``data`` (n, 500, 4) float32, ``label`` (n,) int32, ``source_id``
    (n, 500) int8, ``source_direction`` (n, n_sources, 3) float32, ``params`` (JSON), ``seed``.
    """
    params = as_parameters(params)
    check_request(n_maps, seed)
    chunks = [arrays for _, arrays in iter_chunks(params, n_maps, seed, chunk_size, processes, progress)]
    out = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    out.update(params=params.to_json(), seed=int(seed), simulator_version=SIMULATOR_VERSION)
    return out


def write_simulation(path, params, n_maps, seed, chunk_size=5000, processes=1, progress=True):
    """Simulate ``n_maps`` maps straight into the ``.npz`` file ``path`` (see
    :func:`crsky.fileformat.write_maps`: memory bounded by ``chunk_size``, written atomically)."""
    params = as_parameters(params)
    check_request(n_maps, seed)
    metadata = {"params": params.to_json(), "seed": int(seed), "simulator_version": SIMULATOR_VERSION}
    chunks = iter_chunks(params, n_maps, seed, chunk_size, processes, progress)
    return write_maps(path, chunks, n_maps, params.n_events, params.n_sources, metadata)


def held_out_simulation(preset=None, n_maps=experiment.HELD_OUT_MAPS, seed=None):
    """The held-out simulation of ``n_maps`` maps of ``preset`` (default the course's,
    :data:`crsky.experiment.PRESET`) with ``seed`` (default the public held-out seed; the
    grader's is hidden): the dict of :func:`simulate`, with ``data`` ``(n, 500, 4)``,
    ``label`` ``(n,)`` and ``source_id`` ``(n, 500)``."""
    return simulate(preset or experiment.PRESET, n_maps,
                    seed=experiment.HELD_OUT_PUBLIC_SEED if seed is None else seed)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.simulate", description="Simulate cosmic-ray sky maps.")
    parser.add_argument("--preset", default=experiment.PRESET, choices=sorted(PRESETS))
    parser.add_argument("--n-maps", type=int, default=experiment.N_MAPS)
    parser.add_argument("--seed", type=int, default=experiment.DATA_SEED)
    parser.add_argument("-o", "--output", required=True, help="the .npz file to write")
    parser.add_argument("--chunk-size", type=int, default=5000, help="maps held in memory at once")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = write_simulation(args.output, args.preset, args.n_maps, args.seed,
                            chunk_size=args.chunk_size, processes=args.processes)
    elapsed = time.perf_counter() - start
    print(f"wrote {args.n_maps} maps ({args.preset}, seed {args.seed}) to {path} in {elapsed:.1f} s "
          f"({args.n_maps / elapsed:,.0f} maps/s)")


if __name__ == "__main__":
    main()

