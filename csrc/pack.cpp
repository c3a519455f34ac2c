#include "pack.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include "bytes.h"
#include "dispatch.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FHTO_PACK_VBMI 1
#include <immintrin.h>
#endif

namespace fhto
{
    namespace
    {
        // SEAL 4.1: Serialization header, then Ciphertext::save_members writes parms_id (32),
        // is_ntt_form (1), size, poly_modulus_degree, coeff_modulus_size (8 each), scale (8),
        // correction_factor (8), then the DynArray: its own header (16) and count (8).
        constexpr std::size_t kSealHeader = 16;
        constexpr std::size_t kCiphertextMeta = 32 + 1 + 8 + 8 + 8 + 8 + 8;
        constexpr std::size_t kCountOffset = kSealHeader + kCiphertextMeta + kSealHeader;
        constexpr std::size_t kWordsOffset = kCountOffset + 8;

#if defined(__SIZEOF_INT128__)
        using Acc = unsigned __int128;
#else
#error "coefficient packing needs a 128-bit integer type (GCC or Clang)"
#endif

        inline std::uint64_t load64(const std::uint8_t *p) noexcept
        {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            std::uint64_t v;
            std::memcpy(&v, p, 8);
            return v;
#else
            return detail::get_le<std::uint64_t>(p);
#endif
        }

        inline void store64(std::uint8_t *p, std::uint64_t v) noexcept
        {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            std::memcpy(p, &v, 8);
#else
            detail::put_le<std::uint64_t>(p, v);
#endif
        }

#ifdef FHTO_PACK_VBMI
        /**
        Whole-byte widths (1 to 7 bytes) 8 words at a time with AVX-512 VBMI: one byte permutation
        gathers the 8 words' low bytes into 8 * width bytes (packing) or spreads them back into 8
        words (unpacking), with masked loads and stores that touch exactly those bytes.
        */
        __attribute__((target("avx512f,avx512bw,avx512vbmi"))) void pack_bytes_vbmi(
            const std::uint8_t *in, std::size_t count, std::size_t width, std::uint8_t *out) noexcept
        {
            alignas(64) std::uint8_t index[64] = {};
            for (std::size_t j = 0; j < 8 * width; j++)
            {
                index[j] = static_cast<std::uint8_t>(8 * (j / width) + j % width);
            }
            const __m512i gather = _mm512_load_si512(index);
            const __mmask64 keep = (~0ULL) >> (64 - 8 * width);
            std::size_t i = 0;
            for (; i + 8 <= count; i += 8)
            {
                _mm512_mask_storeu_epi8(out + width * i, keep, _mm512_permutexvar_epi8(gather, _mm512_loadu_si512(in + 8 * i)));
            }
            for (; i < count; i++)
            {
                std::memcpy(out + width * i, in + 8 * i, width);
            }
        }

        __attribute__((target("avx512f,avx512bw,avx512vbmi"))) void unpack_bytes_vbmi(
            const std::uint8_t *in, std::size_t count, std::size_t width, std::uint8_t *out) noexcept
        {
            alignas(64) std::uint8_t index[64] = {};
            std::uint64_t spread = 0;
            for (std::size_t j = 0; j < 64; j++)
            {
                if (j % 8 < width)
                {
                    index[j] = static_cast<std::uint8_t>(width * (j / 8) + j % 8);
                    spread |= 1ULL << j;
                }
            }
            const __m512i scatter = _mm512_load_si512(index);
            const __mmask64 read = (~0ULL) >> (64 - 8 * width);
            std::size_t i = 0;
            for (; i + 8 <= count; i += 8)
            {
                const __m512i bytes = _mm512_maskz_loadu_epi8(read, in + width * i);
                _mm512_storeu_si512(out + 8 * i, _mm512_maskz_permutexvar_epi8(spread, scatter, bytes));
            }
            for (; i < count; i++)
            {
                std::uint64_t word = 0;
                std::memcpy(&word, in + width * i, width);
                std::memcpy(out + 8 * i, &word, 8);
            }
        }
#endif

        /** Whether whole-byte widths use the VBMI loops (FHTO_PACK=scalar forces the scalar ones). */
        bool vbmi() noexcept
        {
#ifdef FHTO_PACK_VBMI
            static const bool yes = [] {
                return detail::forced_path("FHTO_PACK") != "scalar" && __builtin_cpu_supports("avx512f") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
            }();
            return yes;
#else
            return false;
#endif
        }

        // Packs `count` 64-bit words of `bits` significant bits each, 64 output bits at a time.
        void pack_words(const std::uint8_t *in, std::size_t count, int bits, std::uint8_t *&out) noexcept
        {
#ifdef FHTO_PACK_VBMI
            if (bits % 8 == 0 && vbmi())
            {
                pack_bytes_vbmi(in, count, static_cast<std::size_t>(bits) / 8, out);
                out += static_cast<std::size_t>(bits) / 8 * count;
                return;
            }
#endif
            if (bits % 8 == 0 && count > 0)
            {
                // Whole bytes per coefficient: overlapping 8-byte stores, each word's high bytes
                // overwritten by the next, while a store stays inside the width * count bytes;
                // the last words (one for widths of 4 or more, up to three for width 3) byte by byte.
                const std::size_t width = static_cast<std::size_t>(bits) / 8;
                std::size_t i = 0;
                for (; width * i + 8 <= width * count; i++)
                {
                    store64(out + width * i, load64(in + 8 * i));
                }
                for (; i < count; i++)
                {
                    const std::uint64_t word = load64(in + 8 * i);
                    for (std::size_t b = 0; b < width; b++)
                    {
                        out[width * i + b] = static_cast<std::uint8_t>(word >> (8 * b));
                    }
                }
                out += width * count;
                return;
            }
            const std::uint64_t mask = (std::uint64_t(1) << bits) - 1;
            Acc acc = 0;
            int have = 0;
            for (std::size_t i = 0; i < count; i++)
            {
                acc |= static_cast<Acc>(load64(in + 8 * i) & mask) << have;
                have += bits;
                if (have >= 64)
                {
                    store64(out, static_cast<std::uint64_t>(acc));
                    out += 8;
                    acc >>= 64;
                    have -= 64;
                }
            }
            for (; have > 0; have -= 8)
            {
                *out++ = static_cast<std::uint8_t>(acc);
                acc >>= 8;
            }
        }

        // Inverse of pack_words; reads exactly the (count * bits + 7) / 8 bytes pack_words wrote.
        void unpack_words(const std::uint8_t *&in, std::size_t count, int bits, std::uint8_t *out) noexcept
        {
#ifdef FHTO_PACK_VBMI
            if (bits % 8 == 0 && vbmi())
            {
                unpack_bytes_vbmi(in, count, static_cast<std::size_t>(bits) / 8, out);
                in += static_cast<std::size_t>(bits) / 8 * count;
                return;
            }
#endif
            const std::uint64_t mask = (std::uint64_t(1) << bits) - 1;
            if (bits % 8 == 0 && count > 0)
            {
                const std::size_t width = static_cast<std::size_t>(bits) / 8;
                std::size_t i = 0;
                for (; width * i + 8 <= width * count; i++)
                {
                    store64(out + 8 * i, load64(in + width * i) & mask);
                }
                for (; i < count; i++)
                {
                    std::uint64_t word = 0;
                    for (std::size_t b = 0; b < width; b++)
                    {
                        word |= static_cast<std::uint64_t>(in[width * i + b]) << (8 * b);
                    }
                    store64(out + 8 * i, word);
                }
                in += width * count;
                return;
            }
            std::size_t left = (count * static_cast<std::size_t>(bits) + 7) / 8;
            Acc acc = 0;
            int have = 0;
            for (std::size_t i = 0; i < count; i++)
            {
                if (have < bits)
                {
                    if (left >= 8)
                    {
                        acc |= static_cast<Acc>(load64(in)) << have;
                        in += 8;
                        left -= 8;
                        have += 64;
                    }
                    else
                    {
                        for (; left > 0; left--)
                        {
                            acc |= static_cast<Acc>(*in++) << have;
                            have += 8;
                        }
                    }
                }
                store64(out + 8 * i, static_cast<std::uint64_t>(acc) & mask);
                acc >>= bits;
                have -= bits;
            }
        }

        std::size_t packed_limb_bytes(std::size_t n, int bits) noexcept
        {
            return (n * static_cast<std::size_t>(bits) + 7) / 8;
        }
    } // namespace

    bool make_pack_layout(
        const std::uint8_t *sample, std::size_t sample_bytes, std::size_t polys, std::size_t n,
        const std::vector<int> &bits, PackLayout &layout)
    {
        layout = PackLayout{};
        layout.seal_bytes = sample_bytes;
        layout.words_offset = kWordsOffset;
        layout.polys = polys;
        layout.n = n;
        layout.bits = bits;
        const std::size_t words = layout.word_count();
        if (sample_bytes < kWordsOffset + 8 * words || detail::get_le<std::uint64_t>(sample + kCountOffset) != words)
        {
            return false;
        }
        for (int b : bits)
        {
            if (b < 1 || b > 62)
            {
                return false;
            }
        }
        std::size_t packed = 0;
        for (std::size_t p = 0; p < polys; p++)
        {
            for (int b : bits)
            {
                packed += packed_limb_bytes(n, b);
            }
        }
        layout.packed_bytes = sample_bytes - 8 * words + packed;
        return true;
    }

    void pack_limb(const std::uint64_t *words, std::size_t n, int bits, std::uint8_t *out) noexcept
    {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        pack_words(reinterpret_cast<const std::uint8_t *>(words), n, bits, out);
#else
        std::vector<std::uint8_t> bytes(8 * n);
        for (std::size_t i = 0; i < n; i++)
        {
            detail::put_le<std::uint64_t>(bytes.data() + 8 * i, words[i]);
        }
        pack_words(bytes.data(), n, bits, out);
#endif
    }

    void unpack_limb(const std::uint8_t *in, std::size_t n, int bits, std::uint64_t *words) noexcept
    {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        unpack_words(in, n, bits, reinterpret_cast<std::uint8_t *>(words));
#else
        std::vector<std::uint8_t> bytes(8 * n);
        unpack_words(in, n, bits, bytes.data());
        for (std::size_t i = 0; i < n; i++)
        {
            words[i] = detail::get_le<std::uint64_t>(bytes.data() + 8 * i);
        }
#endif
    }

    void pack_ciphertext(const PackLayout &layout, const std::uint8_t *seal, std::uint8_t *packed) noexcept
    {
        std::memcpy(packed, seal, layout.words_offset);
        const std::uint8_t *in = seal + layout.words_offset;
        std::uint8_t *out = packed + layout.words_offset;
        for (std::size_t p = 0; p < layout.polys; p++)
        {
            for (int b : layout.bits)
            {
                pack_words(in, layout.n, b, out);
                in += 8 * layout.n;
            }
        }
        std::memcpy(out, in, layout.seal_bytes - static_cast<std::size_t>(in - seal));
    }

    void unpack_ciphertext(const PackLayout &layout, const std::uint8_t *packed, std::uint8_t *seal) noexcept
    {
        std::memcpy(seal, packed, layout.words_offset);
        const std::uint8_t *in = packed + layout.words_offset;
        std::uint8_t *out = seal + layout.words_offset;
        for (std::size_t p = 0; p < layout.polys; p++)
        {
            for (int b : layout.bits)
            {
                unpack_words(in, layout.n, b, out);
                out += 8 * layout.n;
            }
        }
        std::memcpy(out, in, layout.packed_bytes - static_cast<std::size_t>(in - packed));
    }
} // namespace fhto
