"""OpenFHE's threshold CKKS on one thread: the peer for FHTO's multiparty aggregation.

    bash scripts/setup-openfhe.sh          # prints the python of .venv-openfhe
    .venv-openfhe/bin/python benchmarks/multiparty/openfhe_threshold.py [--ciphertexts 50] [--repeats 5]

Runs standalone in its own environment (the OpenFHE wheel is CPython 3.10 only) and imports
nothing from FHTO. Parameters: ring dimension 4096, one 60-bit modulus (multiplicative depth 0),
scale 2^50, HEStd_128_classic, 2,048 values per ciphertext, 3 parties (KeyGen for the lead,
MultipartyKeyGen for the others). OpenFHE refuses N=4096 with its default hybrid key switching
(the special primes count against the 109-bit bound); BV key switching keeps the modulus at the one
60-bit prime and is accepted. Each refusal is reported verbatim under ``context_attempts``.

Each pass has every party encrypt ``--ciphertexts`` vectors under the joint public key, adds the
three ciphertexts of each index, has every party compute its decryption share of the sum (the lead
with MultipartyDecryptLead, the others with MultipartyDecryptMain) and fuses the shares. Every call
is timed alone; the medians are over all passes. Also reported: serialized sizes (BINARY), the
largest error of the fused sums against the plaintext sums, the share-noise modes, and OpenFHE's
t-of-n "aborts" (ShareKeys / RecoverSharedKey) tried at 3-of-5 and 6-of-10, with two refusals
(too few survivors, a minority threshold) and 6-of-10 again over a 50-bit modulus as a control. Over
the 60-bit modulus, thresholds of 6 and more rebuilt wrong keys without any error from ShareKeys or
RecoverSharedKey; only the decoding of the fused result failed. Prints one JSON object.
"""
from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # must precede the import: OpenMP reads it when it loads

import argparse
import importlib.metadata
import json
import math
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import openfhe as fhe

RING_DIM = 4096
FIRST_MOD_BITS = 60
SCALE_BITS = 50
DEPTH = 0
BATCH = 2048
PARTIES = 3
#: OpenFHE's fixed share noise (NoiseFlooding::MP_SD in pke/include/constants-defs.h): the standard
#: deviation of the Gaussian each decryption share adds in FIXED_NOISE_MULTIPARTY mode. The Python
#: API does not expose it.
FIXED_SHARE_NOISE_STD = 2.0 ** 20
#: Largest error of a t-of-n decryption counted as a success: sums of up to 10 values in (-1, 1)
#: carry errors near 1e-3 at scale 2^40, while a wrong key yields values of the order of the modulus
#: over the scale, or a decoding failure.
ABORTS_TOLERANCE = 1e-2

#: Settings tried in order until OpenFHE accepts one: the specification with the library's defaults
#: for everything else, then without the scaling extension prime, then with BV key switching.
ATTEMPTS: Tuple[Tuple[str, Dict[str, object]], ...] = (
    ("library defaults (FLEXIBLEAUTOEXT, HYBRID)", {}),
    ("FIXEDMANUAL, HYBRID", {"ScalingTechnique": fhe.FIXEDMANUAL}),
    ("FIXEDMANUAL, BV", {"ScalingTechnique": fhe.FIXEDMANUAL, "KeySwitchTechnique": fhe.BV}),
)

def ckks_params(ring_dim: int = RING_DIM, **settings: object) -> fhe.CCParamsCKKSRNS:
    """The benchmark's CKKS parameters, with ``settings`` applied through their ``Set`` methods."""
    p = fhe.CCParamsCKKSRNS()
    p.SetSecurityLevel(fhe.SecurityLevel.HEStd_128_classic)
    p.SetRingDim(ring_dim)
    p.SetMultiplicativeDepth(DEPTH)
    p.SetFirstModSize(FIRST_MOD_BITS)
    p.SetScalingModSize(SCALE_BITS)
    p.SetBatchSize(BATCH)
    for name, value in settings.items():
        getattr(p, "Set" + name)(value)
    return p


def enable_multiparty(cc: fhe.CryptoContext) -> fhe.CryptoContext:
    for feature in (fhe.PKE, fhe.KEYSWITCH, fhe.LEVELEDSHE, fhe.MULTIPARTY):
        cc.Enable(feature)
    return cc


def make_context() -> Tuple[fhe.CryptoContext, fhe.CCParamsCKKSRNS, Dict[str, object], List[dict]]:
    """The first context of :data:`ATTEMPTS` that OpenFHE accepts, its parameters and settings,
    and every attempt's outcome."""
    attempts = []
    for label, settings in ATTEMPTS:
        params = ckks_params(**settings)
        try:
            cc = fhe.GenCryptoContext(params)
        except RuntimeError as e:
            attempts.append({"settings": label, "accepted": False, "message": str(e)})
            continue
        attempts.append({"settings": label, "accepted": True})
        return enable_multiparty(cc), params, settings, attempts
    raise SystemExit("openfhe_threshold: OpenFHE accepted none of the parameter sets:\n"
                     + json.dumps(attempts, indent=1))


def parameters_used(cc: fhe.CryptoContext, params: fhe.CCParamsCKKSRNS) -> dict:
    """The parameters as the context reports them (modulus and scale as generated)."""
    return {
        "ring_dimension": cc.GetRingDimension(),
        "slots_used": BATCH,
        "log2_ciphertext_modulus": math.log2(cc.GetElementParams().GetModulus()),
        "ciphertext_modulus_bits": cc.GetElementParams().GetModulus().bit_length(),
        "log2_scale": math.log2(cc.GetScalingFactorReal(0)),
        "multiplicative_depth": cc.GetMultiplicativeDepth(),
        "first_mod_size": params.GetFirstModSize(),
        "scaling_mod_size": params.GetScalingModSize(),
        "scaling_technique": cc.GetScalingTechnique().name,
        "key_switch_technique": cc.GetKeySwitchTechnique().name,
        "security_level": params.GetSecurityLevel().name,
        "secret_key_distribution": params.GetSecretKeyDist().name,
        "parties": PARTIES,
        "omp_num_threads": os.environ["OMP_NUM_THREADS"],
    }


def joint_keys(cc: fhe.CryptoContext, parties: int) -> List[fhe.KeyPair]:
    """Key pairs of ``parties`` parties in a chain; the last public key is the joint one."""
    keys = [cc.KeyGen()]
    for _ in range(parties - 1):
        keys.append(cc.MultipartyKeyGen(keys[-1].publicKey))
    return keys


def decryption_shares(cc: fhe.CryptoContext, ct: fhe.Ciphertext,
                      secrets: Sequence[fhe.PrivateKey]) -> List[fhe.Ciphertext]:
    """One share per secret; the first is the lead's."""
    shares = cc.MultipartyDecryptLead([ct], secrets[0])
    for sk in secrets[1:]:
        shares += cc.MultipartyDecryptMain([ct], sk)
    return shares


def encrypt_sum(cc: fhe.CryptoContext, pk: fhe.PublicKey, rows: np.ndarray) -> fhe.Ciphertext:
    """The homomorphic sum of one ciphertext per row of ``rows``."""
    total = cc.Encrypt(pk, cc.MakeCKKSPackedPlaintext(rows[0]))
    for x in rows[1:]:
        total = cc.EvalAdd(total, cc.Encrypt(pk, cc.MakeCKKSPackedPlaintext(x)))
    return total


def fuse(cc: fhe.CryptoContext, shares: Sequence[fhe.Ciphertext]) -> np.ndarray:
    """The fused, decoded values of one ciphertext's decryption shares."""
    pt = cc.MultipartyDecryptFusion(list(shares))
    pt.SetLength(BATCH)
    return pt.GetRealPackedValueArray()


def timed(samples: List[float], call: Callable, *args: object):
    """``call(*args)``, its duration appended to ``samples``."""
    start = time.perf_counter()
    out = call(*args)
    samples.append(time.perf_counter() - start)
    return out


def measure(cc: fhe.CryptoContext, keys: List[fhe.KeyPair], ciphertexts: int, repeats: int,
            rng: np.random.Generator) -> dict:
    """Per-ciphertext timings over ``repeats`` passes of ``ciphertexts`` sums of ``PARTIES`` uploads."""
    pk = keys[-1].publicKey
    secrets = [k.secretKey for k in keys]
    t: Dict[str, List[float]] = {k: [] for k in ("encrypt", "add", "add_inplace", "share_lead", "share_main",
                                                 "fusion")}
    max_error = 0.0
    sizes: Dict[str, int] = {}

    def encrypt(x: np.ndarray) -> fhe.Ciphertext:
        return cc.Encrypt(pk, cc.MakeCKKSPackedPlaintext(x))

    for _ in range(repeats):
        data = rng.uniform(-1.0, 1.0, size=(PARTIES, ciphertexts, BATCH))
        uploads = [[timed(t["encrypt"], encrypt, data[p, i]) for i in range(ciphertexts)] for p in range(PARTIES)]
        for i in range(ciphertexts):
            total = timed(t["add"], cc.EvalAdd, uploads[0][i], uploads[1][i])
            for p in range(2, PARTIES):
                timed(t["add_inplace"], cc.EvalAddInPlace, total, uploads[p][i])
            shares = timed(t["share_lead"], cc.MultipartyDecryptLead, [total], secrets[0])
            for sk in secrets[1:]:
                shares += timed(t["share_main"], cc.MultipartyDecryptMain, [total], sk)
            values = timed(t["fusion"], fuse, cc, shares)
            max_error = max(max_error, float(np.max(np.abs(values - data[:, i].sum(axis=0)))))
        if not sizes:
            sizes = {
                "ciphertext_fresh": len(fhe.Serialize(uploads[0][0], fhe.BINARY)),
                "ciphertext_sum": len(fhe.Serialize(total, fhe.BINARY)),
                "share_lead": len(fhe.Serialize(shares[0], fhe.BINARY)),
                "share_main": len(fhe.Serialize(shares[1], fhe.BINARY)),
            }

    phases = {}
    for name, samples in t.items():
        s = statistics.median(samples)
        phases[name] = {"seconds_per_ciphertext": s, "values_per_second": BATCH / s, "samples": len(samples)}
    return {
        "phases": phases,
        "serialized_bytes": sizes,
        "bytes_per_value": {k: v / BATCH for k, v in sizes.items()},
        "max_abs_error": max_error,
        "data": f"uniform(-1, 1) per party, sums of {PARTIES}",
        "phase_calls": {
            "encrypt": "MakeCKKSPackedPlaintext + Encrypt (joint public key)",
            "add": "EvalAdd (new ciphertext)",
            "add_inplace": "EvalAddInPlace",
            "share_lead": "MultipartyDecryptLead",
            "share_main": "MultipartyDecryptMain",
            "fusion": f"MultipartyDecryptFusion of {PARTIES} shares, decoding included",
        },
    }


def share_noise_modes(params: fhe.CCParamsCKKSRNS) -> dict:
    """Which share noise OpenFHE applies by default, and what it says to the alternatives."""
    defaults = fhe.CCParamsCKKSRNS()
    out = {
        "default_multiparty_mode": defaults.GetMultipartyMode().name,
        "default_decryption_noise_mode": defaults.GetDecryptionNoiseMode().name,
        "default_execution_mode": defaults.GetExecutionMode().name,
        "used_multiparty_mode": params.GetMultipartyMode().name,
        "used_decryption_noise_mode": params.GetDecryptionNoiseMode().name,
        "fixed_share_noise_std": FIXED_SHARE_NOISE_STD,
        "fixed_share_noise_source": "Gaussian, NoiseFlooding::MP_SD in OpenFHE's constants-defs.h; "
                                    "not readable through the Python API",
    }
    try:
        ckks_params(MultipartyMode=fhe.NOISE_FLOODING_MULTIPARTY)
        out["noise_flooding_multiparty"] = {"accepted": True}
    except RuntimeError as e:
        out["noise_flooding_multiparty"] = {"accepted": False, "message": str(e)}
    return out


def flooding_decrypt_probe(settings: Dict[str, object], rng: np.random.Generator, shares: int) -> dict:
    """NOISE_FLOODING_DECRYPT, OpenFHE's IND-CPA^D mode for CKKS, on the same protocol.

    Two runs as OpenFHE prescribes: EXEC_NOISE_ESTIMATION measures the noise of the computation,
    then EXEC_EVALUATION, with new keys, floods each decryption share with a Gaussian sized from it.
    The values are scaled into (-0.1, 0.1): OpenFHE raises the scale to 2^59 in this mode (64-bit
    build), which leaves a 60-bit modulus room for sums of magnitude below about 1.
    """
    data = rng.uniform(-0.1, 0.1, size=(PARTIES, BATCH))
    out: dict = {}
    noise = None
    for mode in (fhe.EXEC_NOISE_ESTIMATION, fhe.EXEC_EVALUATION):
        extra = {"DecryptionNoiseMode": fhe.NOISE_FLOODING_DECRYPT, "ExecutionMode": mode}
        if noise is not None:
            extra["NoiseEstimate"] = noise
        try:
            cc = enable_multiparty(fhe.GenCryptoContext(ckks_params(**settings, **extra)))
        except RuntimeError as e:
            out[mode.name] = {"accepted": False, "message": str(e)}
            return out
        keys = joint_keys(cc, PARTIES)
        total = encrypt_sum(cc, keys[-1].publicKey, data)
        share_seconds: List[float] = []
        for _ in range(shares):
            timed(share_seconds, cc.MultipartyDecryptMain, [total], keys[1].secretKey)
        pt = cc.MultipartyDecryptFusion(decryption_shares(cc, total, [k.secretKey for k in keys]))
        pt.SetLength(BATCH)
        row = {"accepted": True, "log2_scale": math.log2(cc.GetScalingFactorReal(0)),
               "share_main_seconds": statistics.median(share_seconds)}
        if mode == fhe.EXEC_NOISE_ESTIMATION:
            noise = pt.GetLogError()
            row["log2_noise_estimate"] = noise
        else:
            # OpenFHE's own sizing (gen-cryptocontext-ckksrns-internal.h); the API does not return it.
            p = ckks_params()
            row["log2_flooding_std"] = (p.GetStatisticalSecurity() / 2
                                        + math.log2(math.sqrt(12 * p.GetNumAdversarialQueries())) + noise)
            row["max_abs_error"] = float(np.max(np.abs(pt.GetRealPackedValueArray() - data.sum(axis=0))))
        out[mode.name] = row
    return out


def threshold_with_aborts(cc: fhe.CryptoContext, n: int, t: int, survivors: Optional[int] = None,
                          share_type: str = "shamir", rng: Optional[np.random.Generator] = None) -> dict:
    """OpenFHE's t-of-n "aborts": each party secret-shares its key; missing keys are rebuilt.

    ``n`` parties hold joint keys; every party calls ShareKeys on its secret key. The parties
    1..(n - survivors) drop out (the lead among them); for each, RecoverSharedKey rebuilds its whole
    secret key from the shares the survivors hold, and that key stands in for it in an otherwise
    ordinary n-share decryption of the sum of all n parties' ciphertexts.
    """
    survivors = t if survivors is None else survivors
    rng = rng or np.random.default_rng(0)
    label = f"{t}-of-{n}" + ("" if survivors == t else f", {survivors} survivors")
    row: dict = {"case": label, "parties": n, "threshold": t, "survivors": survivors, "share_type": share_type,
                 "modulus_bits": cc.GetElementParams().GetModulus().bit_length()}
    keys = joint_keys(cc, n)
    try:
        share_seconds: List[float] = []
        key_shares = {i: timed(share_seconds, cc.ShareKeys, keys[i - 1].secretKey, n, t, i, share_type)
                      for i in range(1, n + 1)}
        row["share_keys_seconds_per_party"] = statistics.median(share_seconds)
        dropped = list(range(1, n - survivors + 1))
        alive = list(range(n - survivors + 1, n + 1))
        secrets = [k.secretKey for k in keys]
        recover_seconds: List[float] = []
        for d in dropped:
            held = {j: key_shares[d][j] for j in alive}
            rebuilt = fhe.PrivateKey(cc)
            timed(recover_seconds, cc.RecoverSharedKey, rebuilt, held, n, t, share_type)
            secrets[d - 1] = rebuilt
        row["dropped"] = dropped
        row["recover_seconds_per_dropped_party"] = statistics.median(recover_seconds) if recover_seconds else 0.0
        data = rng.uniform(-1.0, 1.0, size=(n, BATCH))
        total = encrypt_sum(cc, keys[-1].publicKey, data)
        values = fuse(cc, decryption_shares(cc, total, secrets))
        row["max_abs_error"] = float(np.max(np.abs(values - data.sum(axis=0))))
        row["succeeded"] = row["max_abs_error"] < ABORTS_TOLERANCE
    except RuntimeError as e:
        row["succeeded"] = False
        row["message"] = str(e)
    return row


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ciphertexts", type=int, default=50, help="sums per pass, one ciphertext per party each")
    p.add_argument("--repeats", type=int, default=5, help="passes; medians are over all of them")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    if args.ciphertexts < 1 or args.repeats < 1:
        p.error("--ciphertexts and --repeats must be at least 1")

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    cc, params, accepted, attempts = make_context()
    keygen_seconds: List[float] = []
    keys = timed(keygen_seconds, joint_keys, cc, PARTIES)
    result = {
        "library": "openfhe",
        "openfhe_python_version": fhe.__version__,
        "wheel_version": importlib.metadata.version("openfhe"),
        "python": sys.version.split()[0],
        "context_attempts": attempts,
        "parameters": parameters_used(cc, params),
        "ciphertexts_per_pass": args.ciphertexts,
        "repeats": args.repeats,
        "keygen_seconds_all_parties": keygen_seconds[0],
    }
    result.update(measure(cc, keys, args.ciphertexts, args.repeats, rng))
    result["share_noise"] = share_noise_modes(params)
    result["share_noise"]["noise_flooding_decrypt"] = flooding_decrypt_probe(accepted, rng, shares=5)
    result["threshold_aborts"] = [
        threshold_with_aborts(cc, 5, 3, rng=rng),
        threshold_with_aborts(cc, 10, 6, rng=rng),
        threshold_with_aborts(cc, 5, 3, survivors=2, rng=rng),
        threshold_with_aborts(cc, 5, 2, rng=rng),
    ]
    # Control: the same protocol with a 50-bit modulus (scale 2^40), where 6-of-10 is expected to work.
    control = enable_multiparty(fhe.GenCryptoContext(ckks_params(**accepted, FirstModSize=50, ScalingModSize=40)))
    result["threshold_aborts"].append(threshold_with_aborts(control, 10, 6, rng=rng))
    if os.path.isdir("/proc/self/task"):
        result["threads_in_process"] = len(os.listdir("/proc/self/task"))
    result["wall_seconds"] = time.perf_counter() - started
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
