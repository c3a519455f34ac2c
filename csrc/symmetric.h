#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>
#include "context.h"
#include "cuda/plan.h"
#include "prng.h"
#include "seal/seal.h"

namespace fhto
{
    /**
    Where the engine's secret-key encryption draws its private randomness (the bootstrap stream:
    the public seed, then 6 noise bytes per coefficient). `seal` is SEAL's own Blake2xb stream,
    so that SEAL, given the bootstrap seed, produces the same ciphertext; `aes_ctr` is the
    AES-256-CTR keystream of that seed (csrc/noise.h), several times cheaper per byte. The public
    seed and the expansion of `a` are SEAL's in both.

    The default: SEAL's stream for a seeded (reproducible) encryption, so that its bytes are the
    same on every machine, on the GPU path and in SEAL; AES-CTR for a random one where the CPU has
    AES instructions. FHTO_NOISE=seal|aes forces one (aes only where available).
    */
    enum class NoiseSource
    {
        seal,
        aes_ctr
    };

    NoiseSource noise_source(bool seeded) noexcept;

    /** "seal" or "aes_ctr". */
    const char *noise_source_name(NoiseSource source) noexcept;

    /**
    Seeded secret-key encryption, the same algorithm as SEAL's Encryptor::encrypt_symmetric for
    CKKS, bit for bit, with the PRNG computed by Blake2xbStream (with NoiseSource::aes_ctr the
    bootstrap stream B is AesCtrStream(bootstrap_seed) instead; see NoiseSource above):

      bootstrap stream B = Blake2xb(bootstrap_seed); public seed = first 64 bytes of B;
      c1 = SEAL's uniform sampling from Blake2xb(public seed), read in NTT form;
      e  = SEAL's centered binomial noise from the rest of B, then NTT;
      c0 = -(c1 * s + e) + m;  c1 is replaced by the seed marker and the public seed.

    Given the same bootstrap seed and NoiseSource::seal, SEAL produces the same ciphertext (the
    tests check this).
    @throws SecretKeyRequiredError on a public context
    */
    void encrypt_symmetric_seeded(
        const Context &context, const seal::Plaintext &plain, const Seed &bootstrap_seed, seal::Ciphertext &destination,
        NoiseSource source);

    /**
    The bootstrap stream of `source` for a bootstrap seed: its first 64 bytes, returned as the
    public seed (eight little-endian words), then `noise_bytes` bytes of noise into `noise`.
    */
    Seed draw_bootstrap(const Seed &bootstrap_seed, NoiseSource source, std::uint8_t *noise, std::size_t noise_bytes);

    /**
    SEAL's centred binomial noise from 6 bytes per coefficient (cuda::cbd_noise) as residues of
    every prime, n per limb into e (8 at a time where AVX-512 VBMI and VPOPCNTDQ exist;
    FHTO_ENCODE=scalar forces one at a time).
    */
    void noise_residues(const std::uint8_t *bytes, std::size_t n, const std::vector<cuda::UniformPrime> &primes,
                        std::uint64_t *e) noexcept;

    /** A fresh bootstrap seed from the operating system's randomness, as SEAL draws one. */
    Seed random_seed();

    /**
    SEAL's sample_poly_uniform over the data-level moduli from a Blake2xb seed: N words per
    limb, each rejected and redrawn (in order, from the same stream) when it falls in the
    incomplete last multiple of the prime, then reduced.
    */
    void expand_uniform(const Context &context, const Seed &seed, std::uint64_t *destination);

    /**
    Loads a seeded ciphertext from SEAL's serialization without SEAL's generic loader when its
    bytes are exactly what this context writes (same header, parameters, level, scale, PRNG
    type) and every coefficient is below its prime; expands the seed with Blake2xbStream.
    Returns false, leaving destination untouched, for anything else: the caller then uses
    SEAL's loader, which is the authority on what is valid.
    */
    bool try_load_seeded(const Context &context, const std::uint8_t *data, std::size_t size, seal::Ciphertext &destination);

    /**
    The same, adding the ciphertext into `sum` (a full ciphertext of this context) in place
    instead of materializing it: sum.c0 += c0, sum.c1 += the expanded seed, modulo each prime.
    Returns false, leaving sum untouched, where try_load_seeded would.
    */
    bool try_add_seeded(const Context &context, const std::uint8_t *data, std::size_t size, seal::Ciphertext &sum);

    /**
    The same straight from a batch's record (packed or not, as `plan` describes this context's
    records): no SEAL serialization is restored. Returns false, leaving sum untouched, if the
    record's fixed bytes are not this context's or a c0 word is not below its prime.
    */
    bool add_seeded_record(const Context &context, const cuda::SumPlan &plan, const std::uint8_t *record, seal::Ciphertext &sum);
} // namespace fhto

namespace fhto
{
    /**
    Checks, on `trials` random seeds and plaintexts, that Blake2xbStream, expand_uniform,
    encrypt_symmetric_seeded and try_load_seeded agree bit for bit with SEAL's own Blake2xbPRNG,
    sample_poly_uniform, Encryptor::encrypt_symmetric and Ciphertext::load. Returns the number
    of comparisons made. @throws std::logic_error naming the first disagreement
    */
    std::size_t check_against_seal(const Context &context, std::size_t trials);
} // namespace fhto
