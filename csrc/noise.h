#pragma once

#include <cstddef>
#include <cstdint>
#include "prng.h"

namespace fhto
{
    /**
    A private random byte stream for encryption noise: the AES-256-CTR keystream (NIST SP 800-38A,
    the encryption of zero plaintext) on the CPU's AES instructions.

    The key is the seed's first 32 bytes (words 0..3, little-endian) and the initial counter block
    its next 16 bytes (words 4..5), read as a 128-bit big-endian counter that each block increments
    by one, carries included, wrapping modulo 2^128, as SP 800-38A's standard incrementing function
    does; words 6..7 are unused. So SP 800-38A's known-answer vectors can be written as seeds, and
    the tests check every path against them.

    Paths, chosen at run time: "vaes512" (AVX-512 with VAES: four blocks per 512-bit register, 32
    blocks in flight), "vaes256" (AVX2 with VAES: two blocks per 256-bit register, 16 in flight) and
    "aesni" (one block per register, 8 in flight). All give the same bytes. FHTO_AES=aesni|vaes256|
    vaes512 forces a path (the fastest the CPU has at or below it); FHTO_AES=none makes available()
    false, so callers' fallbacks can be tested. There is no software AES: without AES-NI nothing
    here may be used.

    Not copyable: a copy would repeat the noise it has yet to give. The key schedule and the
    unread keystream are zeroed on destruction. Never throws.
    */
    class AesCtrStream
    {
    public:
        /** Expands the key. Only when available(); otherwise the process aborts. */
        explicit AesCtrStream(const Seed &seed) noexcept;

        ~AesCtrStream();

        AesCtrStream(const AesCtrStream &) = delete;
        AesCtrStream &operator=(const AesCtrStream &) = delete;

        /** Writes the next `count` bytes of the stream to out; successive calls continue it exactly. */
        void generate(std::uint8_t *out, std::size_t count) noexcept;

        /** Whether this CPU has the instructions the stream needs (AES-NI and SSSE3). */
        static bool available() noexcept;

    private:
        static constexpr std::size_t kRounds = 14;
        static constexpr std::size_t kBufferBlocks = 32;
        static constexpr std::size_t kBufferBytes = 16 * kBufferBlocks;

        /** Writes `blocks` keystream blocks to out and advances the counter past them. */
        void blocks(std::uint8_t *out, std::size_t blocks) noexcept;

        alignas(16) std::uint8_t round_keys_[16 * (kRounds + 1)];
        std::uint64_t counter_hi_ = 0; ///< the counter block's first 8 bytes, as a big-endian number
        std::uint64_t counter_lo_ = 0; ///< its last 8 bytes
        alignas(64) std::uint8_t buffer_[kBufferBytes]; ///< keystream computed but not yet read
        std::size_t head_ = kBufferBytes;
    };

    /** Name of the path AesCtrStream uses on this CPU: "vaes512", "vaes256", "aesni" or "none". */
    const char *aes_ctr_backend() noexcept;
} // namespace fhto
