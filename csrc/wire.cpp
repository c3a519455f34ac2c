#include "wire.h"

#include <cstring>
#include <limits>
#include "bytes.h"
#include "checksum.h"
#include "errors.h"
#include "prng.h"
#include "symmetric.h"

namespace fhto
{
    namespace
    {
        constexpr char kMagic[8] = { 'F', 'H', 'T', 'O', 'C', 'K', 'K', 'S' };

        std::uint32_t header_crc(const std::uint8_t *h) noexcept
        {
            const std::uint8_t zero[4] = { 0, 0, 0, 0 };
            std::uint32_t crc = crc32c(h, 12);
            crc = crc32c(zero, 4, crc);
            return crc32c(h + 16, kBatchHeaderBytes - 16, crc);
        }
    } // namespace

    std::string to_hex(const Fingerprint &fp)
    {
        static const char digits[] = "0123456789abcdef";
        std::string s;
        for (auto b : fp)
        {
            s += digits[b >> 4];
            s += digits[b & 15];
        }
        return s;
    }

    std::uint32_t position_check_start(std::uint32_t header_checksum, std::uint64_t k) noexcept
    {
        std::uint8_t index[8];
        detail::put_le<std::uint64_t>(index, k);
        return crc32c(index, sizeof(index), header_checksum);
    }

    BatchId random_batch_id()
    {
        const Seed seed = random_seed();
        BatchId id;
        std::memcpy(id.data(), seed.data(), id.size());
        return id;
    }

    BatchId seeded_batch_id(std::uint64_t seed) noexcept
    {
        const Seed derived = derive_seed(SeedPurpose::batch, seed, 0);
        BatchId id;
        std::memcpy(id.data(), derived.data(), id.size());
        return id;
    }

    std::uint64_t ciphertexts_for(const Context &context, std::uint64_t value_count) noexcept
    {
        const std::uint64_t v = context.values_per_ciphertext();
        return value_count / v + (value_count % v != 0);
    }

    std::size_t batch_bytes(std::uint64_t ciphertext_count, std::uint64_t ciphertext_bytes)
    {
        constexpr auto max = std::numeric_limits<std::size_t>::max();
        if (ciphertext_bytes > max - kBatchHeaderBytes - 4 ||
            ciphertext_count > (max - kBatchHeaderBytes) / (ciphertext_bytes + 4))
        {
            throw ValueRangeError("batch of " + std::to_string(ciphertext_count) + " ciphertexts is too large to address");
        }
        return static_cast<std::size_t>(kBatchHeaderBytes + ciphertext_count * (ciphertext_bytes + 4));
    }

    std::uint32_t write_header(std::uint8_t *out, const BatchHeader &h) noexcept
    {
        std::memset(out, 0, kBatchHeaderBytes);
        std::memcpy(out, kMagic, 8);
        detail::put_le<std::uint16_t>(out + 8, kBatchVersion);
        out[10] = static_cast<std::uint8_t>(h.mode);
        out[11] = static_cast<std::uint8_t>(h.packing);
        std::memcpy(out + 16, h.fingerprint.data(), 16);
        detail::put_le<std::uint64_t>(out + 32, h.value_count);
        detail::put_le<std::uint64_t>(out + 40, h.ciphertext_count);
        detail::put_le<std::uint64_t>(out + 48, h.ciphertext_bytes);
        detail::put_le<std::uint32_t>(out + 56, h.contributions);
        detail::put_le<std::uint32_t>(out + 60, h.party_budget);
        std::memcpy(out + 64, h.batch_id.data(), 16);
        const std::uint32_t crc = header_crc(out);
        detail::put_le<std::uint32_t>(out + 12, crc);
        return crc;
    }

    namespace
    {
        std::uint32_t header_checksum(const BatchHeader &h) noexcept
        {
            std::uint8_t image[kBatchHeaderBytes];
            return write_header(image, h);
        }
    } // namespace

    BatchWriter::BatchWriter(const Context &context, std::uint8_t *out, const BatchHeader &header)
        : out_(out), header_(header), header_checksum_(header_checksum(header)), checksums_(out + kBatchHeaderBytes),
          ciphertexts_(checksums_ + 4 * header.ciphertext_count)
    {
        if (header.packing == Packing::bits)
        {
            layout_ = context.pack_layout(header.mode);
            if (!layout_)
            {
                throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
            }
        }
    }

    std::uint8_t *BatchWriter::scratch_bytes(std::size_t size)
    {
        thread_local std::vector<std::uint8_t> scratch;
        if (scratch.size() < size)
        {
            scratch.resize(size);
        }
        return scratch.data();
    }

    void BatchWriter::finish() const noexcept
    {
        write_header(out_, header_);
    }

    BatchHeader read_header(const std::uint8_t *data, std::size_t size)
    {
        if (size < kBatchHeaderBytes)
        {
            throw FormatError(
                "not an FHTO ciphertext batch: " + std::to_string(size) + " bytes is shorter than the " +
                std::to_string(kBatchHeaderBytes) + "-byte header");
        }
        if (std::memcmp(data, kMagic, 8) != 0)
        {
            throw FormatError("not an FHTO ciphertext batch: bad magic bytes");
        }
        const auto version = detail::get_le<std::uint16_t>(data + 8);
        if (version != kBatchVersion)
        {
            throw FormatError(
                "unsupported batch format version " + std::to_string(version) + "; this build reads version " +
                std::to_string(kBatchVersion));
        }
        if (detail::get_le<std::uint32_t>(data + 12) != header_crc(data))
        {
            throw FormatError("batch header is corrupted: checksum mismatch");
        }
        BatchHeader h;
        const std::uint8_t mode = data[10];
        if (mode < 1 || mode > 3)
        {
            throw FormatError("batch header names an unknown encryption mode " + std::to_string(mode));
        }
        if (data[11] > 1)
        {
            throw FormatError("batch header names an unknown packing " + std::to_string(data[11]));
        }
        h.mode = static_cast<Mode>(mode);
        h.packing = static_cast<Packing>(data[11]);
        std::memcpy(h.fingerprint.data(), data + 16, 16);
        h.value_count = detail::get_le<std::uint64_t>(data + 32);
        h.ciphertext_count = detail::get_le<std::uint64_t>(data + 40);
        h.ciphertext_bytes = detail::get_le<std::uint64_t>(data + 48);
        h.contributions = detail::get_le<std::uint32_t>(data + 56);
        h.party_budget = detail::get_le<std::uint32_t>(data + 60);
        std::memcpy(h.batch_id.data(), data + 64, 16);
        if (h.value_count == 0 || h.ciphertext_count == 0 || h.ciphertext_bytes == 0)
        {
            throw FormatError("batch header declares zero values, ciphertexts or ciphertext bytes");
        }
        if (h.contributions == 0 || h.party_budget == 0 || h.contributions > h.party_budget)
        {
            throw FormatError(
                "batch header declares " + std::to_string(h.contributions) + " contributions for a party budget of " +
                std::to_string(h.party_budget));
        }
        if (h.ciphertext_bytes > (std::uint64_t(1) << 32) ||
            h.ciphertext_count > (std::numeric_limits<std::size_t>::max() - kBatchHeaderBytes) / (h.ciphertext_bytes + 4))
        {
            throw FormatError("batch header declares an impossible size");
        }
        const std::size_t expected = batch_bytes(h.ciphertext_count, h.ciphertext_bytes);
        if (size != expected)
        {
            throw FormatError(
                "batch is " + std::string(size < expected ? "truncated" : "too long") + ": " + std::to_string(size) +
                " bytes, its header declares " + std::to_string(expected));
        }
        return h;
    }

    BatchView parse_batch(const Context &context, const std::uint8_t *data, std::size_t size)
    {
        BatchView view;
        view.header = read_header(data, size);
        const BatchHeader &h = view.header;
        if (h.fingerprint != context.fingerprint())
        {
            throw KeyMismatchError(
                "ciphertexts were made under another key or parameter set (batch fingerprint " + to_hex(h.fingerprint) +
                ", this context " + to_hex(context.fingerprint()) + ")");
        }
        if (h.ciphertext_count != ciphertexts_for(context, h.value_count))
        {
            throw FormatError(
                "batch header declares " + std::to_string(h.ciphertext_count) + " ciphertexts for " +
                std::to_string(h.value_count) + " values; expected " +
                std::to_string(ciphertexts_for(context, h.value_count)));
        }
        const std::size_t expected_ct = context.ciphertext_bytes(h.mode, h.packing);
        if (expected_ct == 0)
        {
            throw FormatError("batch is bit-packed, which this SEAL build's ciphertext layout does not support");
        }
        if (h.ciphertext_bytes != expected_ct)
        {
            throw FormatError(
                "batch header declares " + std::to_string(h.ciphertext_bytes) + "-byte ciphertexts; " +
                mode_name(h.mode) + (h.packing == Packing::bits ? " bit-packed" : "") +
                " ciphertexts of this context have " + std::to_string(expected_ct));
        }
        view.header_checksum = detail::get_le<std::uint32_t>(data + 12);
        view.checksums = data + kBatchHeaderBytes;
        view.ciphertexts = view.checksums + 4 * h.ciphertext_count;
        return view;
    }

    void check_ciphertext(const BatchView &batch, std::size_t k)
    {
        const std::uint32_t stored = detail::get_le<std::uint32_t>(batch.checksums + 4 * k);
        const std::uint32_t start = position_check_start(batch.header_checksum, k);
        if (crc32c(batch.ciphertext(k), batch.header.ciphertext_bytes, start) != stored)
        {
            throw FormatError(
                "ciphertext " + std::to_string(k) +
                " is corrupted: checksum mismatch (its bytes changed, or it was moved from another position or "
                "another batch)");
        }
    }

    const std::uint8_t *seal_bytes(const Context &context, const BatchView &batch, std::size_t k, std::size_t &size)
    {
        if (batch.header.packing != Packing::bits)
        {
            size = static_cast<std::size_t>(batch.header.ciphertext_bytes);
            return batch.ciphertext(k);
        }
        const PackLayout *layout = context.pack_layout(batch.header.mode); // non-null: parse_batch checked
        std::uint8_t *scratch = BatchWriter::scratch_bytes(layout->seal_bytes);
        unpack_ciphertext(*layout, batch.ciphertext(k), scratch);
        size = layout->seal_bytes;
        return scratch;
    }

    void load_ciphertext(const Context &context, const BatchView &batch, std::size_t k, seal::Ciphertext &destination)
    {
        std::size_t size = 0;
        const std::uint8_t *data = seal_bytes(context, batch, k, size);
        if (batch.header.mode == Mode::symmetric && try_load_seeded(context, data, size, destination))
        {
            return;
        }
        try
        {
            destination.load(context.seal_context(), reinterpret_cast<const seal::seal_byte *>(data), size);
        }
        catch (const std::exception &e)
        {
            throw FormatError("ciphertext " + std::to_string(k) + " is not a valid SEAL ciphertext: " + e.what());
        }
        if (destination.size() != 2 || !destination.is_ntt_form() ||
            destination.parms_id() != context.seal_context().first_parms_id() || destination.scale() != context.scale())
        {
            throw FormatError(
                "ciphertext " + std::to_string(k) + " does not have the size, level or scale of this context");
        }
    }
} // namespace fhto
