#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace fhto
{
    /** A 64-byte PRNG seed, as SEAL's prng_seed_type. */
    using Seed = std::array<std::uint64_t, 8>;

    /**
    The byte stream of SEAL's Blake2xbPRNG for a seed, bit for bit, computed faster.

    SEAL refills its PRNG buffer with blake2xb(4096 bytes, input = a 64-bit block counter,
    key = the seed), counter 0, 1, ... Blake2xb's 64 output blocks per refill are independent
    BLAKE2b compressions that differ only in their node offset, so they are computed several at
    a time in SIMD lanes (8 with AVX-512, 4 with AVX2; one at a time otherwise), chosen at run
    time. The root's first block (the seed as key) is compressed once per stream; a read that
    spans several refills computes their roots together in the same lanes and writes whole blocks
    straight to the caller's buffer. The stream is what SEAL expands a seeded ciphertext from, so
    it must match exactly; the tests compare it with SEAL's own PRNG.
    */
    class Blake2xbStream
    {
    public:
        static constexpr std::size_t kBlockBytes = 4096;

        explicit Blake2xbStream(const Seed &seed) noexcept;

        /** Appends the next `count` bytes of the stream to out. Never throws. */
        void generate(std::uint8_t *out, std::size_t count) noexcept;

        /** The next little-endian 64-bit word of the stream. */
        std::uint64_t next_word() noexcept
        {
            std::uint8_t b[8];
            generate(b, 8);
            std::uint64_t w = 0;
            for (int i = 7; i >= 0; i--)
            {
                w = (w << 8) | b[i];
            }
            return w;
        }

    private:
        std::uint64_t chain_[8]; ///< the root's state after its first block (the seed as key)
        std::uint64_t counter_ = 0;
        alignas(64) std::uint8_t buffer_[kBlockBytes];
        std::size_t head_ = kBlockBytes;
    };

    /** Name of the SIMD path Blake2xbStream uses on this CPU: "avx512", "avx2" or "scalar". */
    const char *blake2xb_backend() noexcept;

    /** What a derived seed is for. Each purpose has its own domain tag, so no two share a stream. */
    enum class SeedPurpose : std::uint8_t
    {
        keygen, ///< the PRNGs of key generation (secret key, then the public key's randomness)
        encrypt, ///< the bootstrap seed of one secret-key encryption
        batch, ///< the identifier of a batch encrypted with a seed
        party, ///< a multiparty key share's secret, noise and Shamir coefficients
        flood ///< the flooding noise of a decryption share
    };

    /**
    The index-th 64-byte seed derived from a caller's 64-bit seed for one purpose:

      BLAKE2b-512(key = tag || le64(seed), message = le64(index)), read as 8 little-endian words,

    with tag the ASCII bytes "fhto.keygen.v1", "fhto.encrypt.v1", "fhto.batch.v1", "fhto.party.v1" or
    "fhto.flood.v1" (no terminator). Distinct
    (purpose, seed, index) give independent seeds.

    For reproducible studies and tests only: 64 bits of seed are far too little secret entropy
    for production keys, and anyone who knows the seed can recompute the keys. Never throws.
    */
    Seed derive_seed(SeedPurpose purpose, std::uint64_t seed, std::uint64_t index) noexcept;
} // namespace fhto
