#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fhto
{
    /**
    Bit-packing of the coefficients inside one SEAL ciphertext serialization (no compression).

    A coefficient modulo a b-bit prime needs b bits, but SEAL stores it in a 64-bit word. The
    packed form keeps SEAL's bytes before and after the coefficient words verbatim and stores
    each RNS limb's N coefficients in exactly N*b bits (least significant bit first). Unpacking
    restores SEAL's own serialization byte for byte, which SEAL then loads and validates.
    */
    struct PackLayout
    {
        std::size_t seal_bytes = 0; ///< size of SEAL's serialization
        std::size_t words_offset = 0; ///< where the coefficient words start in it
        std::size_t polys = 0; ///< polynomials stored (1 for a seeded ciphertext, 2 otherwise)
        std::size_t n = 0; ///< coefficients per limb (the ring degree)
        std::vector<int> bits; ///< bits of each RNS limb's prime
        std::size_t packed_bytes = 0; ///< size of the packed form

        std::size_t word_count() const noexcept
        {
            return polys * bits.size() * n;
        }
    };

    /**
    Derives the layout from one sample serialization, checking that SEAL wrote the coefficient
    words where this format expects them (its 16-byte header, 73 bytes of ciphertext metadata,
    the array's 16-byte header and 8-byte count). Returns false if it did not.
    */
    bool make_pack_layout(
        const std::uint8_t *sample, std::size_t sample_bytes, std::size_t polys, std::size_t n,
        const std::vector<int> &bits, PackLayout &layout);

    /** Packs n words of `bits` significant bits each (1..62) into (n * bits + 7) / 8 bytes, as pack_ciphertext packs a limb. */
    void pack_limb(const std::uint64_t *words, std::size_t n, int bits, std::uint8_t *out) noexcept;

    /** Unpacks what pack_limb wrote: n words of `bits` bits each (1..62) from (n * bits + 7) / 8 bytes. */
    void unpack_limb(const std::uint8_t *in, std::size_t n, int bits, std::uint64_t *words) noexcept;

    /** Packs a SEAL serialization of layout.seal_bytes into layout.packed_bytes. Never throws. */
    void pack_ciphertext(const PackLayout &layout, const std::uint8_t *seal, std::uint8_t *packed) noexcept;

    /** Restores the SEAL serialization (layout.seal_bytes) from its packed form. Never throws. */
    void unpack_ciphertext(const PackLayout &layout, const std::uint8_t *packed, std::uint8_t *seal) noexcept;
} // namespace fhto
