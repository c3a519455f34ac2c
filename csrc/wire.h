#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include "bytes.h"
#include "checksum.h"
#include "context.h"

namespace fhto
{
    /** 16 bytes that name one batch: random, or derived from the encryption seed. */
    using BatchId = std::array<std::uint8_t, 16>;

    /**
    The batch wire format, version 2 (all integers little-endian):

        offset  bytes  field
        0       8      magic "FHTOCKKS"
        8       2      format version (2)
        10      1      mode: 1 symmetric (seeded), 2 public key, 3 sum
        11      1      packing: 0 SEAL's own serialization, 1 coefficients bit-packed
        12      4      CRC-32C of these 80 header bytes, this field taken as 0
        16      16     key/parameter fingerprint
        32      8      value count
        40      8      ciphertext count = ceil(value count / values per ciphertext)
        48      8      bytes of each serialized ciphertext
        56      4      contributions summed into this batch (1 for a fresh encryption)
        60      4      party budget: how many contributions the values were range-checked for
        64      16     batch identifier: random for each batch (derived from the seed when
                       encryption is seeded)
        80      4*C    check of each ciphertext k: CRC-32C of its bytes, the CRC started from
                       position_check_start(header checksum, k)
        80+4C   B*C    the ciphertexts, each in SEAL's own serialization (no compression), or
                       with packing 1 its bit-packed form (see pack.h)

    A ciphertext k carries values [k*V, (k+1)*V) with V = N: value 2j in the real part and
    value 2j+1 in the imaginary part of slot j; the last ciphertext is zero-padded.

    What the checks catch: any accidental change to the header or a ciphertext (CRC-32C finds
    every burst of up to 32 bits and all but 2^-32 of other changes); a ciphertext moved to
    another position, or spliced in from another batch, with or without its check entry (each
    check depends on the position and on the whole header, batch identifier included); a batch
    cut short or padded. What they do not catch: deliberate forgery. CRC-32C is not a MAC;
    whoever can write the bytes can recompute every check. Authenticity is the transport's job
    (TLS, signed uploads).
    */
    struct BatchHeader
    {
        Mode mode = Mode::symmetric;
        Packing packing = Packing::none;
        Fingerprint fingerprint{};
        std::uint64_t value_count = 0;
        std::uint64_t ciphertext_count = 0;
        std::uint64_t ciphertext_bytes = 0;
        std::uint32_t contributions = 0;
        std::uint32_t party_budget = 0;
        BatchId batch_id{};
    };

    constexpr std::size_t kBatchHeaderBytes = 80;
    constexpr std::uint16_t kBatchVersion = 2;

    /** Where the CRC of ciphertext k starts: CRC-32C of le64(k), started from the header's checksum. */
    std::uint32_t position_check_start(std::uint32_t header_checksum, std::uint64_t k) noexcept;

    /** A fresh random batch identifier (the operating system's randomness). */
    BatchId random_batch_id();

    /** The batch identifier of an encryption made with `seed`: derive_seed(SeedPurpose::batch, seed, 0). */
    BatchId seeded_batch_id(std::uint64_t seed) noexcept;

    /** A parsed batch: its header and pointers into the caller's bytes (not owned). */
    struct BatchView
    {
        BatchHeader header;
        std::uint32_t header_checksum = 0;
        const std::uint8_t *checksums = nullptr;
        const std::uint8_t *ciphertexts = nullptr;

        const std::uint8_t *ciphertext(std::size_t k) const noexcept
        {
            return ciphertexts + k * header.ciphertext_bytes;
        }
    };

    /**
    Writes a batch into a caller's buffer of exactly batch_bytes(header.ciphertext_count,
    header.ciphertext_bytes) bytes: store() each ciphertext (from any thread), then finish().
    */
    class BatchWriter
    {
    public:
        /** @throws ParameterError if the header asks for a packing this context cannot do */
        BatchWriter(const Context &context, std::uint8_t *out, const BatchHeader &header);

        /**
        Serializes ciphertext k (a seal::Ciphertext or a seal::Serializable<seal::Ciphertext>)
        without compression into its slot and records its checksum.
        @throws std::logic_error if SEAL writes another size than the header declares
        */
        template <typename T>
        void store(std::size_t k, const T &ciphertext) const
        {
            std::uint8_t *dst = record(k);
            if (layout_)
            {
                std::uint8_t *scratch = scratch_bytes(layout_->seal_bytes);
                save_exact(ciphertext, scratch, layout_->seal_bytes);
                pack_ciphertext(*layout_, scratch, dst);
            }
            else
            {
                save_exact(ciphertext, dst, static_cast<std::size_t>(header_.ciphertext_bytes));
            }
            check(k);
        }

        /** Ciphertext k's slot (header.ciphertext_bytes), for a caller that writes the record itself, then check(k). */
        std::uint8_t *record(std::size_t k) const noexcept
        {
            return ciphertexts_ + k * static_cast<std::size_t>(header_.ciphertext_bytes);
        }

        /** Records the checksum of ciphertext k's slot as written. */
        void check(std::size_t k) const noexcept
        {
            const auto size = static_cast<std::size_t>(header_.ciphertext_bytes);
            detail::put_le<std::uint32_t>(checksums_ + 4 * k, crc32c(record(k), size, position_check_start(header_checksum_, k)));
        }

        /** Writes the header (with its checksum); call after every store(). */
        void finish() const noexcept;

        /** A per-thread scratch buffer of at least `size` bytes. */
        static std::uint8_t *scratch_bytes(std::size_t size);

    private:
        template <typename T>
        static void save_exact(const T &ciphertext, std::uint8_t *dst, std::size_t size)
        {
            const auto written =
                ciphertext.save(reinterpret_cast<seal::seal_byte *>(dst), size, seal::compr_mode_type::none);
            if (static_cast<std::size_t>(written) != size)
            {
                throw std::logic_error("SEAL wrote a ciphertext of an unexpected size");
            }
        }

        std::uint8_t *out_;
        BatchHeader header_;
        std::uint32_t header_checksum_;
        const PackLayout *layout_ = nullptr;
        std::uint8_t *checksums_;
        std::uint8_t *ciphertexts_;
    };

    /** Ciphertexts needed for value_count values. */
    std::uint64_t ciphertexts_for(const Context &context, std::uint64_t value_count) noexcept;

    /** Total batch size in bytes. @throws ValueRangeError if it does not fit in memory addresses */
    std::size_t batch_bytes(std::uint64_t ciphertext_count, std::uint64_t ciphertext_bytes);

    /** Writes the 80-byte header (with its checksum) to out and returns the checksum. */
    std::uint32_t write_header(std::uint8_t *out, const BatchHeader &header) noexcept;

    /**
    Reads and checks the header alone, without a context: magic, version, checksum, mode, and
    that the total length matches the declared counts.
    @throws FormatError for malformed bytes
    */
    BatchHeader read_header(const std::uint8_t *data, std::size_t size);

    /**
    Parses and checks a batch against a context: magic, version, header checksum, mode, the
    fingerprint, the ciphertext count and size the context expects, and the exact total length.
    Ciphertext checksums are checked later, by whoever loads each ciphertext (check_ciphertext).
    @throws FormatError for malformed bytes
    @throws KeyMismatchError if the batch was made under another key or parameter set
    */
    BatchView parse_batch(const Context &context, const std::uint8_t *data, std::size_t size);

    /**
    @throws FormatError if ciphertext k does not match its stored check (corrupted, or moved
    from another position or another batch)
    */
    void check_ciphertext(const BatchView &batch, std::size_t k);

    /**
    SEAL's serialization of ciphertext k: in place, or restored from its bit-packed form into a
    per-thread scratch buffer (valid until the same thread asks again). Sets size.
    */
    const std::uint8_t *seal_bytes(const Context &context, const BatchView &batch, std::size_t k, std::size_t &size);

    /** Loads ciphertext k through SEAL (expanding a seed) and checks it belongs to the context. @throws FormatError */
    void load_ciphertext(const Context &context, const BatchView &batch, std::size_t k, seal::Ciphertext &destination);

    /** Hex form of a fingerprint, for messages. */
    std::string to_hex(const Fingerprint &fp);
} // namespace fhto
