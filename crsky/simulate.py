"""The sky-map simulator: isotropic maps and maps with cosmic-ray "streets".

A sky map holds ``n_events`` (500) cosmic rays above ``emin_eev`` (40 EeV), energies
from the Auger 2020 spectrum. An isotropic map (label 0) is pure background. In a
signal map (label 1) ``signal_fraction`` of the cosmic rays come from ``n_sources``
sources: each is deflected away from its source by ``Z / E`` times the deflection
model (a street, high energies nearest the source), then Fisher-smeared by the
turbulent field (``smearing_deg_eev * Z / E``) and the detector resolution.

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
from crsky.sky import auger_exposure, exposure_weighted_directions, fisher_smear
from crsky.spectrum import EMAX_EEV, EnergySampler, energy_feature

SIMULATOR_VERSION = "1.0"
BLOCK_SIZE = 250  # maps per random stream; fixed so that chunking cannot change results


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
    sources = exposure_weighted_directions(rng, (n_maps, n_sources), exposure)

    # Signal cosmic rays: the first n_signal of each signal map, shared out among its sources
    # (with an exposure, those landing where the detector does not look are not seen).
    n_signal = int(round(params.signal_fraction * n_events))
    signal_maps = np.flatnonzero(label == 1)
    share = np.arange(n_signal) % n_sources
    source_id[signal_maps, :n_signal] = share
    model = _deflection_model(params)
    streets = model.street_directions(rng, sources)
    map_index = np.repeat(signal_maps, n_signal)
    source_index = np.tile(share, len(signal_maps))
    charge_values = np.array([z for z, _ in params.charges], dtype=float)
    charge_weights = np.array([w for _, w in params.charges], dtype=float)
    charge = charge_values[rng.choice(len(charge_values), size=len(map_index), p=charge_weights / charge_weights.sum())]
    energy = energies[signal_maps, :n_signal].reshape(-1)
    rigidity_inverse = charge / energy  # Z / E in 1/EeV
    origin = sources[map_index, source_index]
    street = None if streets is None else streets[map_index, source_index]
    arrival = model.deflect(origin, street, rigidity_inverse)
    spread = np.radians(np.hypot(params.smearing_deg_eev * rigidity_inverse, params.resolution_deg))
    arrival = fisher_smear(rng, arrival, spread)
    # A detector sees a cosmic ray with a probability given by its exposure where it lands:
    # the ones it misses leave their slot to the background cosmic ray already drawn there.
    seen = np.ones(len(arrival), dtype=bool) if exposure is None else rng.random(len(arrival)) < exposure(arrival)
    slot_index = np.tile(np.arange(n_signal), len(signal_maps))
    directions[map_index[seen], slot_index[seen]] = arrival[seen]
    source_id[map_index[~seen], slot_index[~seen]] = -1

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
