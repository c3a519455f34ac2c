#include "encrypt.h"
#include "multiparty.h"

#include <cmath>
#include <complex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>
#include "bytes.h"
#include "checksum.h"
#include "encoder.h"
#include "errors.h"
#include "parallel.h"
#include "prng.h"
#include "symmetric.h"
#include "wire.h"

namespace fhto
{
    BatchHeader encryption_header(const Context &context, std::size_t count, const EncryptOptions &options)
    {
        BatchHeader h;
        h.mode = options.mode;
        h.packing = options.packing;
        h.fingerprint = context.fingerprint();
        h.value_count = count;
        h.ciphertext_count = ciphertexts_for(context, count);
        h.ciphertext_bytes = context.ciphertext_bytes(options.mode, options.packing);
        h.contributions = 1;
        h.party_budget = options.parties;
        h.batch_id = options.seed ? seeded_batch_id(*options.seed) : random_batch_id();
        return h;
    }

    std::size_t encrypted_size(const Context &context, std::size_t value_count, Mode mode, Packing packing)
    {
        const std::size_t ct_bytes = context.ciphertext_bytes(mode, packing);
        if (ct_bytes == 0)
        {
            throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
        }
        return batch_bytes(ciphertexts_for(context, value_count), ct_bytes);
    }

    namespace
    {
        int resolve_threads(int threads)
        {
            if (threads < 0)
            {
                throw ParameterError("threads must be positive (or 0 for all cores); got " + std::to_string(threads));
            }
            return threads == 0 ? detail::default_threads() : threads;
        }

        struct ScanResult
        {
            std::size_t first_bad = SIZE_MAX;
            double max_abs = 0;
            std::size_t max_index = 0;
        };

        constexpr std::size_t kScanBlock = 1 << 16;

        template <typename T>
        ScanResult scan(const T *values, std::size_t count, int threads)
        {
            const std::size_t blocks = count / kScanBlock + (count % kScanBlock != 0);
            std::vector<ScanResult> partial(blocks);
            detail::parallel_for(blocks, threads, [&](std::size_t b) {
                ScanResult r;
                const std::size_t begin = b * kScanBlock;
                const std::size_t end = std::min(count, begin + kScanBlock);
                for (std::size_t i = begin; i < end; i++)
                {
                    const double a = std::fabs(static_cast<double>(values[i]));
                    if (a > r.max_abs)
                    {
                        r.max_abs = a;
                        r.max_index = i;
                    }
                    // NaN fails every comparison, infinity is caught by its size.
                    if (!(a <= 1.7976931348623157e308))
                    {
                        r.first_bad = i;
                        break;
                    }
                }
                partial[b] = r;
            });
            ScanResult total;
            for (const auto &r : partial)
            {
                if (r.first_bad != SIZE_MAX)
                {
                    total.first_bad = r.first_bad;
                    break;
                }
                if (r.max_abs > total.max_abs)
                {
                    total.max_abs = r.max_abs;
                    total.max_index = r.max_index;
                }
            }
            return total;
        }
    } // namespace

    void check_options(const Context &context, const EncryptOptions &options)
    {
        if (options.mode != Mode::symmetric && options.mode != Mode::public_key)
        {
            throw ParameterError("mode must be symmetric or public_key");
        }
        if (!std::isfinite(options.weight) || options.weight == 0)
        {
            throw ParameterError("weight must be finite and non-zero");
        }
        if (options.parties == 0)
        {
            throw ParameterError("parties must be at least 1");
        }
        if (options.mode == Mode::symmetric && !context.has_secret_key())
        {
            throw SecretKeyRequiredError(
                "symmetric encryption needs the secret key; a public context can only encrypt with mode='public_key'");
        }
    }

    void check_scan(
        const Context &context, const EncryptOptions &options, std::size_t first_bad, double bad_value, double max_abs,
        std::size_t max_index)
    {
        if (first_bad != SIZE_MAX)
        {
            throw ValueRangeError(
                "values must be finite: index " + std::to_string(first_bad) + " is " +
                (std::isnan(bad_value) ? "nan" : (bad_value > 0 ? "inf" : "-inf")));
        }
        const double limit = context.max_abs_value(options.parties, options.mode);
        const double worst = max_abs * std::fabs(options.weight);
        if (worst > limit)
        {
            std::ostringstream s;
            s.precision(6);
            s << "values too large for the parameters: |weight * value| = " << worst << " at index " << max_index
              << " exceeds the limit " << limit << " for a sum of " << options.parties << " contribution(s) ("
              << describe(context.params()) << ", data modulus 2^" << context.data_modulus_bits()
              << "); use a smaller weight or fewer parties, or parameters with a smaller scale or a larger modulus";
            throw ValueRangeError(s.str());
        }
    }

    template <typename T>
    void check_values(const Context &context, const T *values, std::size_t count, const EncryptOptions &options)
    {
        check_options(context, options);
        const ScanResult r = scan(values, count, resolve_threads(options.threads));
        check_scan(
            context, options, r.first_bad, r.first_bad != SIZE_MAX ? static_cast<double>(values[r.first_bad]) : 0.0,
            r.max_abs, r.max_index);
    }

    template <typename T>
    void encrypt_into(
        const Context &context, const T *values, std::size_t count, const EncryptOptions &options, std::uint8_t *out,
        std::size_t out_size)
    {
        if (count == 0)
        {
            throw ParameterError("cannot encrypt an empty update");
        }
        check_options(context, options);
        const std::size_t expected = encrypted_size(context, count, options.mode, options.packing);
        if (out_size != expected)
        {
            throw ParameterError(
                "output buffer is " + std::to_string(out_size) + " bytes; the batch needs " + std::to_string(expected));
        }
        const int threads = resolve_threads(options.threads);
        check_values(context, values, count, options);

        const BatchHeader h = encryption_header(context, count, options);

        const std::size_t per_ct = context.values_per_ciphertext();
        const std::size_t slots = per_ct / 2;
        const double scale = context.scale();
        const double weight = options.weight;
        const BatchWriter writer(context, out, h);
        const auto &encoder = context.encoder();
        const auto &encryptor = context.encryptor();
        const bool symmetric = options.mode == Mode::symmetric;

        // The engine's encoder (csrc/encoder.h: SEAL's algorithm and doubles, the engine's NTT), or
        // SEAL's own with FHTO_ENCODE=seal; the tests compare the two byte for byte.
        std::optional<EncoderTables> tables;
        if (engine_encoder_enabled() && h.ciphertext_count >= kEngineMinCiphertexts)
        {
            tables = encoder_tables(context);
        }
        const auto &seal_context = context.seal_context();
        const std::size_t limbs = seal_context.first_context_data()->parms().coeff_modulus().size();

        detail::parallel_for(static_cast<std::size_t>(h.ciphertext_count), threads, [&](std::size_t k) {
            auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
            seal::Plaintext plain(pool);
            if (tables)
            {
                thread_local std::vector<cuda::Complex> work;
                work.resize(per_ct);
                plain.parms_id() = seal::parms_id_zero;
                plain.resize(per_ct * limbs);
                encode_ciphertext(context, *tables, values, count, k, weight, plain.data(), work.data());
                plain.parms_id() = seal_context.first_parms_id();
                plain.scale() = scale;
            }
            else
            {
                thread_local std::vector<std::complex<double>> slot_values;
                slot_values.assign(slots, std::complex<double>(0.0, 0.0));
                const std::size_t begin = k * per_ct;
                const std::size_t end = std::min(count, begin + per_ct);
                const T *src = values + begin;
                const std::size_t n = end - begin;
                for (std::size_t j = 0; 2 * j + 1 < n; j++)
                {
                    slot_values[j] = { weight * static_cast<double>(src[2 * j]), weight * static_cast<double>(src[2 * j + 1]) };
                }
                if (n % 2)
                {
                    slot_values[n / 2] = { weight * static_cast<double>(src[n - 1]), 0.0 };
                }
                try
                {
                    encoder.encode(slot_values, scale, plain, pool);
                }
                catch (const std::invalid_argument &e)
                {
                    // Unreachable after check_values (max_abs_value keeps every encoding inside
                    // SEAL's limit); kept so that no SEAL refusal ever escapes untyped.
                    throw ValueRangeError(
                        "ciphertext " + std::to_string(k) + ": SEAL's encoder refused the values (" + e.what() + ")");
                }
            }
            if (symmetric)
            {
                seal::Ciphertext ct(pool);
                const Seed bootstrap = options.seed ? derive_seed(SeedPurpose::encrypt, *options.seed, k) : random_seed();
                encrypt_symmetric_seeded(context, plain, bootstrap, ct);
                writer.store(k, ct);
            }
            else if (options.seed)
            {
                seal::Ciphertext ct(pool);
                encrypt_asymmetric_seeded(context, plain, derive_seed(SeedPurpose::encrypt, *options.seed, k), ct);
                writer.store(k, ct);
            }
            else
            {
                writer.store(k, encryptor.encrypt(plain, pool));
            }
        });
        writer.finish();
    }

    template void check_values<float>(const Context &, const float *, std::size_t, const EncryptOptions &);
    template void check_values<double>(const Context &, const double *, std::size_t, const EncryptOptions &);
    template void encrypt_into<float>(
        const Context &, const float *, std::size_t, const EncryptOptions &, std::uint8_t *, std::size_t);
    template void encrypt_into<double>(
        const Context &, const double *, std::size_t, const EncryptOptions &, std::uint8_t *, std::size_t);
} // namespace fhto
