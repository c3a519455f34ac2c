#include "context.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>
#include "bytes.h"
#include "checksum.h"
#include "errors.h"
#include "plans.h"
#include "prng.h"
#include "seal/util/hash.h"

namespace fhto
{
    namespace
    {
        constexpr char kSecretMagic[8] = { 'F', 'H', 'T', 'O', 'K', 'E', 'Y', 'S' };
        constexpr char kPublicMagic[8] = { 'F', 'H', 'T', 'O', 'P', 'C', 'T', 'X' };
        constexpr std::uint16_t kContextVersion = 1;
        constexpr std::size_t kContextHeaderBytes = 40;
        // Where SEAL's ciphertext serialization holds the scale: its 16-byte header, then
        // parms_id (32), is_ntt_form (1), size, poly_modulus_degree, coeff_modulus_size (8 each).
        constexpr std::size_t kScaleOffset = 16 + 32 + 1 + 8 + 8 + 8;

        template <typename T>
        std::string seal_save(const T &obj)
        {
            std::string out(static_cast<std::size_t>(obj.save_size(seal::compr_mode_type::none)), '\0');
            auto n = obj.save(reinterpret_cast<seal::seal_byte *>(&out[0]), out.size(), seal::compr_mode_type::none);
            out.resize(static_cast<std::size_t>(n));
            return out;
        }

        Fingerprint compute_fingerprint(const seal::SEALContext &ctx, const seal::PublicKey &pk, int scale_bits)
        {
            std::vector<std::uint64_t> words;
            const auto &pid = ctx.key_parms_id();
            words.insert(words.end(), pid.begin(), pid.end());
            words.push_back(static_cast<std::uint64_t>(scale_bits));
            const auto &data = pk.data();
            words.insert(words.end(), data.data(), data.data() + data.dyn_array().size());
            seal::util::HashFunction::hash_block_type block;
            seal::util::HashFunction::hash(words.data(), words.size(), block);
            Fingerprint fp{};
            std::memcpy(fp.data(), block.data(), fp.size());
            return fp;
        }

        /**
        SEAL's generator factory for seeded key generation. SEAL's own fixed-seed factory hands
        the same seed to every PRNG it creates, so the secret key and the public key's
        randomness would be read from one stream; this one gives the k-th PRNG made by
        create() its own seed, derive_seed(SeedPurpose::keygen, seed, k).
        */
        class DerivedSeedFactory final : public seal::UniformRandomGeneratorFactory
        {
        public:
            /**
            The base class's default seed, which create() passes to create_impl, is itself a
            derived value (index 2^64 - 1, never reached by the counter), so create_impl can
            tell create() from an explicit create(seed), which it honours as given.
            */
            explicit DerivedSeedFactory(std::uint64_t seed)
                : seal::UniformRandomGeneratorFactory(derive_seed(SeedPurpose::keygen, seed, ~std::uint64_t{ 0 })),
                  seed_(seed)
            {}

        protected:
            std::shared_ptr<seal::UniformRandomGenerator> create_impl(seal::prng_seed_type seed) override
            {
                if (seed != default_seed())
                {
                    return std::make_shared<seal::Blake2xbPRNG>(seed);
                }
                return std::make_shared<seal::Blake2xbPRNG>(derive_seed(SeedPurpose::keygen, seed_, next_++));
            }

        private:
            std::uint64_t seed_;
            std::atomic<std::uint64_t> next_{ 0 };
        };

        Params params_from_seal(const seal::EncryptionParameters &parms, int scale_bits, Packing packing)
        {
            Params p;
            p.poly_modulus_degree = parms.poly_modulus_degree();
            for (const auto &m : parms.coeff_modulus())
            {
                p.coeff_modulus_bits.push_back(m.bit_count());
            }
            p.scale_bits = scale_bits;
            p.packing = packing;
            return p;
        }
    } // namespace

    const char *mode_name(Mode mode) noexcept
    {
        switch (mode)
        {
        case Mode::symmetric:
            return "symmetric";
        case Mode::public_key:
            return "public_key";
        case Mode::sum:
            return "sum";
        }
        return "unknown";
    }

    struct Context::State
    {
        Params params;
        seal::EncryptionParameters parms;
        seal::SEALContext context;
        seal::PublicKey public_key;
        std::optional<seal::SecretKey> secret_key;
        seal::CKKSEncoder encoder;
        seal::Encryptor encryptor;
        seal::Evaluator evaluator;
        mutable std::optional<seal::Decryptor> decryptor;
        Fingerprint fingerprint{};
        double data_bits = 0;
        double data_modulus = 0;
        int data_bit_count = 0; ///< SEAL's total_coeff_modulus_bit_count at the data level
        std::size_t seeded_bytes = 0;
        std::size_t full_bytes = 0;
        std::optional<PackLayout> seeded_layout;
        std::optional<PackLayout> full_layout;
        std::optional<SeededTemplate> seeded_template;
        std::unique_ptr<Plans> plans = std::make_unique<Plans>();

        State(
            const Params &p, const seal::EncryptionParameters &sp, const seal::SEALContext &ctx,
            const seal::PublicKey &pk, const std::optional<seal::SecretKey> &sk)
            : params(p), parms(sp), context(ctx), public_key(pk), secret_key(sk), encoder(context),
              encryptor(context, public_key), evaluator(context)
        {
            if (secret_key)
            {
                encryptor.set_secret_key(*secret_key);
                decryptor.emplace(context, *secret_key);
            }
            fingerprint = compute_fingerprint(context, public_key, params.scale_bits);
            const auto &data_moduli = context.first_context_data()->parms().coeff_modulus();
            data_modulus = 1.0;
            for (const auto &m : data_moduli)
            {
                data_modulus *= static_cast<double>(m.value());
            }
            data_bits = std::log2(data_modulus);
            data_bit_count = context.first_context_data()->total_coeff_modulus_bit_count();
            // Serialized sizes depend on the parameters alone; measure them once. A public
            // context makes its seeded sample with a throwaway key (sizes only, never shipped).
            std::optional<seal::KeyGenerator> throwaway;
            const seal::SecretKey *sk_for_size = secret_key ? &*secret_key : nullptr;
            if (!sk_for_size)
            {
                throwaway.emplace(context);
                sk_for_size = &throwaway->secret_key();
            }
            seal::Encryptor sizer(context, *sk_for_size);
            const std::string seeded_sample = seal_save(sizer.encrypt_zero_symmetric());
            const std::string full_sample = seal_save(encryptor.encrypt_zero());
            seeded_bytes = seeded_sample.size();
            full_bytes = full_sample.size();
            std::vector<int> limb_bits;
            for (const auto &m : data_moduli)
            {
                limb_bits.push_back(m.bit_count());
            }
            PackLayout layout;
            const std::size_t n = params.poly_modulus_degree;
            if (make_pack_layout(
                    reinterpret_cast<const std::uint8_t *>(seeded_sample.data()), seeded_bytes, 1, n, limb_bits, layout))
            {
                seeded_layout = layout;
            }
            if (make_pack_layout(
                    reinterpret_cast<const std::uint8_t *>(full_sample.data()), full_bytes, 2, n, limb_bits, layout))
            {
                full_layout = layout;
            }
            if (seeded_layout)
            {
                // SEAL's seeded form: [prefix][N*L words][record header (16) + PRNG type (1)][seed (64)].
                const auto *sample = reinterpret_cast<const std::uint8_t *>(seeded_sample.data());
                const std::size_t words_end = seeded_layout->words_offset + 8 * seeded_layout->word_count();
                constexpr std::size_t record_header = 17;
                if (seeded_bytes == words_end + record_header + 64)
                {
                    SeededTemplate t;
                    t.prefix.assign(sample, sample + seeded_layout->words_offset);
                    const double s = std::ldexp(1.0, params.scale_bits);
                    std::memcpy(t.prefix.data() + kScaleOffset, &s, sizeof(s));
                    t.seed_record_offset = words_end;
                    t.seed_record_header.assign(sample + words_end, sample + words_end + record_header);
                    t.total_bytes = seeded_bytes;
                    seeded_template = std::move(t);
                }
            }
        }
    };

    Context Context::generate(const Params &params, std::optional<std::uint64_t> seed)
    {
        auto parms = make_seal_parameters(params);
        seal::SEALContext ctx(parms, true, seal::sec_level_type::tc128);
        if (!ctx.parameters_set())
        {
            throw ParameterError(
                std::string("SEAL rejected the parameters (") + describe(params) + "): " + ctx.parameter_error_message());
        }
        // A seeded key set is made in a SEAL context of its own whose parameters carry the
        // derived-seed factory; the context kept below (ctx, from parms) keeps SEAL's default
        // factory, so later encryptions stay random. Keys are bound to the parms_id, which the
        // factory is no part of, so they belong to ctx as well.
        std::optional<seal::SEALContext> seeded_ctx;
        if (seed)
        {
            seal::EncryptionParameters seeded_parms = parms;
            seeded_parms.set_random_generator(std::make_shared<DerivedSeedFactory>(*seed));
            seeded_ctx.emplace(seeded_parms, true, seal::sec_level_type::tc128);
        }
        seal::KeyGenerator keygen(seeded_ctx ? *seeded_ctx : ctx);
        seal::PublicKey pk;
        keygen.create_public_key(pk);
        std::optional<seal::SecretKey> sk(keygen.secret_key());
        auto state = std::make_shared<const State>(params, parms, ctx, pk, sk);
        if (params.packing == Packing::bits && !state->seeded_layout)
        {
            throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
        }
        return Context(std::move(state));
    }

    Context Context::from_public_key(const Params &params, const seal::PublicKey &public_key)
    {
        auto parms = make_seal_parameters(params);
        seal::SEALContext ctx(parms, true, seal::sec_level_type::tc128);
        if (!ctx.parameters_set())
        {
            throw ParameterError(
                std::string("SEAL rejected the parameters (") + describe(params) + "): " + ctx.parameter_error_message());
        }
        if (!seal::is_valid_for(public_key, ctx))
        {
            throw FormatError("the public key does not belong to these parameters (" + describe(params) + ")");
        }
        auto state = std::make_shared<const State>(params, parms, ctx, public_key, std::nullopt);
        if (params.packing == Packing::bits && !state->seeded_layout)
        {
            throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
        }
        return Context(std::move(state));
    }

    Context Context::public_only() const
    {
        if (!s_->secret_key)
        {
            return *this;
        }
        return Context(std::make_shared<const State>(s_->params, s_->parms, s_->context, s_->public_key, std::nullopt));
    }

    std::string Context::to_bytes(bool include_secret) const
    {
        if (include_secret && !s_->secret_key)
        {
            throw SecretKeyRequiredError("this context holds no secret key to save");
        }
        std::string sections;
        auto append = [&sections](const std::string &blob) {
            std::uint8_t len[8];
            detail::put_le<std::uint64_t>(len, blob.size());
            sections.append(reinterpret_cast<const char *>(len), 8);
            sections.append(blob);
        };
        append(seal_parameters_bytes());
        append(seal_public_key_bytes());
        if (include_secret)
        {
            append(seal_secret_key_bytes());
        }
        std::string out(kContextHeaderBytes, '\0');
        auto *h = reinterpret_cast<std::uint8_t *>(&out[0]);
        std::memcpy(h, include_secret ? kSecretMagic : kPublicMagic, 8);
        detail::put_le<std::uint16_t>(h + 8, kContextVersion);
        std::memcpy(h + 16, s_->fingerprint.data(), 16);
        detail::put_le<std::uint32_t>(h + 32, static_cast<std::uint32_t>(s_->params.scale_bits));
        h[36] = static_cast<std::uint8_t>(s_->params.packing);
        out += sections;
        std::uint32_t crc = crc32c(out.data(), out.size());
        detail::put_le<std::uint32_t>(reinterpret_cast<std::uint8_t *>(&out[12]), crc);
        return out;
    }

    Context Context::from_bytes(const std::uint8_t *data, std::size_t size)
    {
        if (size < kContextHeaderBytes)
        {
            throw FormatError(
                "not an FHTO key set or public context: " + std::to_string(size) + " bytes is shorter than the " +
                std::to_string(kContextHeaderBytes) + "-byte header");
        }
        bool has_secret;
        if (std::memcmp(data, kSecretMagic, 8) == 0)
        {
            has_secret = true;
        }
        else if (std::memcmp(data, kPublicMagic, 8) == 0)
        {
            has_secret = false;
        }
        else
        {
            throw FormatError("not an FHTO key set or public context: bad magic bytes");
        }
        detail::Reader r(data, size, "key set");
        r.take(8);
        auto version = r.get<std::uint16_t>();
        if (version != kContextVersion)
        {
            throw FormatError("unsupported key set format version " + std::to_string(version));
        }
        r.take(2);
        auto stored_crc = r.get<std::uint32_t>();
        {
            std::uint32_t crc = crc32c(data, 12);
            const std::uint8_t zero[4] = { 0, 0, 0, 0 };
            crc = crc32c(zero, 4, crc);
            crc = crc32c(data + 16, size - 16, crc);
            if (crc != stored_crc)
            {
                throw FormatError("key set is corrupted: checksum mismatch");
            }
        }
        Fingerprint stored_fp;
        std::memcpy(stored_fp.data(), r.take(16), 16);
        auto scale_bits = r.get<std::uint32_t>();
        const std::uint8_t *flags = r.take(4);
        if (flags[0] > 1 || flags[1] != 0 || flags[2] != 0 || flags[3] != 0)
        {
            throw FormatError("key set holds unknown flags");
        }
        const auto packing = static_cast<Packing>(flags[0]);
        auto section = [&r](const char *name, std::size_t &len) {
            auto n = r.get<std::uint64_t>();
            if (n > r.remaining())
            {
                throw FormatError(std::string("key set is truncated: the ") + name + " section claims " +
                                  std::to_string(n) + " bytes but " + std::to_string(r.remaining()) + " remain");
            }
            len = static_cast<std::size_t>(n);
            return r.take(len);
        };
        std::size_t parms_len = 0, pk_len = 0, sk_len = 0;
        const std::uint8_t *parms_bytes = section("parameters", parms_len);
        const std::uint8_t *pk_bytes = section("public key", pk_len);
        const std::uint8_t *sk_bytes = has_secret ? section("secret key", sk_len) : nullptr;
        if (r.remaining() != 0)
        {
            throw FormatError("key set has " + std::to_string(r.remaining()) + " unexpected trailing bytes");
        }

        seal::EncryptionParameters parms;
        try
        {
            parms.load(reinterpret_cast<const seal::seal_byte *>(parms_bytes), parms_len);
        }
        catch (const std::exception &e)
        {
            throw FormatError(std::string("key set holds invalid SEAL parameters: ") + e.what());
        }
        if (parms.scheme() != seal::scheme_type::ckks)
        {
            throw FormatError("key set holds parameters for another scheme than CKKS");
        }
        if (scale_bits > 1000)
        {
            throw FormatError("key set holds an invalid scale: 2^" + std::to_string(scale_bits));
        }
        Params params = params_from_seal(parms, static_cast<int>(scale_bits), packing);
        validate_params(params);
        seal::SEALContext ctx(parms, true, seal::sec_level_type::tc128);
        if (!ctx.parameters_set())
        {
            throw ParameterError(std::string("SEAL rejected the stored parameters: ") + ctx.parameter_error_message());
        }
        seal::PublicKey pk;
        std::optional<seal::SecretKey> sk;
        try
        {
            pk.load(ctx, reinterpret_cast<const seal::seal_byte *>(pk_bytes), pk_len);
            if (has_secret)
            {
                sk.emplace();
                sk->load(ctx, reinterpret_cast<const seal::seal_byte *>(sk_bytes), sk_len);
            }
        }
        catch (const std::exception &e)
        {
            throw FormatError(std::string("key set holds an invalid SEAL key: ") + e.what());
        }
        auto state = std::make_shared<const State>(params, parms, ctx, pk, sk);
        if (state->fingerprint != stored_fp)
        {
            throw FormatError("key set is corrupted: its fingerprint does not match its keys");
        }
        if (has_secret)
        {
            // The secret key must belong to the public key: a public-key encryption of zero
            // has to decrypt to (almost) zero.
            seal::Ciphertext ct;
            state->encryptor.encrypt_zero(ct);
            seal::Plaintext pt;
            state->decryptor->decrypt(ct, pt);
            std::vector<std::complex<double>> z;
            state->encoder.decode(pt, z);
            double worst = 0;
            for (const auto &v : z)
            {
                worst = std::max(worst, std::abs(v));
            }
            // The worst-case noise bound (for scale 1) is N * 21 * (2N + 1); anything above it is a foreign key.
            const double n = static_cast<double>(params.poly_modulus_degree);
            if (!(worst <= n * kNoiseMax * (2 * n + 1) + n))
            {
                throw FormatError("key set is corrupted: its secret key does not match its public key");
            }
        }
        return Context(std::move(state));
    }

    bool Context::has_secret_key() const noexcept
    {
        return s_->secret_key.has_value();
    }

    const Params &Context::params() const noexcept
    {
        return s_->params;
    }

    const seal::SEALContext &Context::seal_context() const noexcept
    {
        return s_->context;
    }

    const seal::CKKSEncoder &Context::encoder() const noexcept
    {
        return s_->encoder;
    }

    const seal::Encryptor &Context::encryptor() const noexcept
    {
        return s_->encryptor;
    }

    const seal::Evaluator &Context::evaluator() const noexcept
    {
        return s_->evaluator;
    }

    const seal::PublicKey &Context::public_key() const noexcept
    {
        return s_->public_key;
    }

    seal::Decryptor &Context::decryptor() const
    {
        if (!s_->decryptor)
        {
            throw SecretKeyRequiredError("decryption needs the secret key; this is a public context");
        }
        return *s_->decryptor;
    }

    const seal::SecretKey &Context::secret_key() const
    {
        if (!s_->secret_key)
        {
            throw SecretKeyRequiredError("this is a public context: it holds no secret key");
        }
        return *s_->secret_key;
    }

    const Fingerprint &Context::fingerprint() const noexcept
    {
        return s_->fingerprint;
    }

    std::size_t Context::values_per_ciphertext() const noexcept
    {
        return s_->params.poly_modulus_degree;
    }

    double Context::scale() const noexcept
    {
        return std::ldexp(1.0, s_->params.scale_bits);
    }

    double Context::data_modulus_bits() const noexcept
    {
        return s_->data_bits;
    }

    namespace
    {
        double noise_coeff_max(Mode mode, double n) noexcept
        {
            return mode == Mode::public_key ? kNoiseMax * (2 * n + 1) : kNoiseMax;
        }

        /** Unit roundoff of IEEE double precision. */
        constexpr double kRoundoff = 0x1p-53;

        /**
        Relative error, in the 2-norm, of one of SEAL's radix-2 complex FFTs of size n in double
        precision: log2(n) * eta / (1 - log2(n) * eta) with eta = mu + gamma_4 * (sqrt(2) + mu)
        (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm. 24.2), taking the
        precomputed roots of unity accurate to mu = 2u.
        */
        double fft_relative_error(double n) noexcept
        {
            const double mu = 2 * kRoundoff;
            const double gamma4 = 4 * kRoundoff / (1 - 4 * kRoundoff);
            const double eta = mu + gamma4 * (std::sqrt(2.0) + mu);
            const double levels = std::log2(n);
            return levels * eta / (1 - levels * eta);
        }
    } // namespace

    double Context::max_abs_value(std::uint32_t parties, Mode mode) const noexcept
    {
        // Each slot holds two values (re, im), so |z| <= sqrt(2) * max|v|, and every coefficient of
        // an encoding is at most scale * max|z| (it is an average of the slots turned by roots of
        // unity). Two limits apply:
        // * encoding: SEAL's encoder refuses a plaintext whose largest coefficient needs more than
        //   B - 2 bits, B the bit count of the data modulus, so sqrt(2) * scale * M <= 2^(B-2);
        // * decryption: a sum of P contributions stays decryptable while every coefficient stays
        //   inside (-q/2, q/2): P * (sqrt(2) * scale * M + 1 + e_max) < q / 2.
        // The factor 1 - 1e-9 covers the encoder's floating-point error (below 1e-13 relative).
        const double n = static_cast<double>(s_->params.poly_modulus_degree);
        const double p = std::max<double>(parties, 1);
        const double decrypt_room = s_->data_modulus / (2.0 * p) - 1.0 - noise_coeff_max(mode, n);
        const double encode_room = std::ldexp(1.0, s_->data_bit_count - 2);
        const double room = std::min(decrypt_room, encode_room);
        return room <= 0 ? 0.0 : room / (std::sqrt(2.0) * scale()) * (1.0 - 1e-9);
    }

    double Context::rounding_error_factor() const noexcept
    {
        // Encoding: the inverse FFT and the scaling put an error of 2-norm at most (f + u) * ||m||
        // on the coefficients m, and ||m||_2 <= scale * sqrt(2) * M for values up to M; mapped
        // back to the slots (the canonical embedding multiplies 2-norms by sqrt(N)) that is at
        // most sqrt(2N) * (f + u) * M on any value. Decoding converts the coefficients of the sum
        // to doubles (at most 4u, counting the CRT composition of several primes) and runs the
        // forward FFT (f): at most sqrt(2N) * (f + 4u) * P * M. Per contribution:
        // sqrt(2N) * (2f + 5u) * M, with f the FFT's relative error.
        const double n = static_cast<double>(s_->params.poly_modulus_degree);
        return std::sqrt(2 * n) * (2 * fft_relative_error(n) + 5 * kRoundoff);
    }

    double Context::error_bound(std::uint32_t parties, Mode mode, double max_abs) const noexcept
    {
        // Noise and rounding to integers: every coefficient of the sum is off by at most
        // P * (1/2 + e_max), and a value is a sum of N coefficients turned by roots of unity,
        // divided by the scale. Floating point: rounding_error_factor() per contribution.
        const double n = static_cast<double>(s_->params.poly_modulus_degree);
        const double p = static_cast<double>(parties);
        const double m = std::isnan(max_abs) || max_abs < 0 ? max_abs_value(parties, mode) : max_abs;
        // The decoder's FFT also turns the noise: (1 + factor) covers that.
        const double factor = rounding_error_factor();
        return p * (n * (1.0 + noise_coeff_max(mode, n)) / scale() * (1.0 + factor) + factor * m);
    }

    std::size_t Context::ciphertext_bytes(Mode mode, Packing packing) const noexcept
    {
        if (packing == Packing::bits)
        {
            const PackLayout *layout = pack_layout(mode);
            return layout ? layout->packed_bytes : 0;
        }
        return mode == Mode::symmetric ? s_->seeded_bytes : s_->full_bytes;
    }

    Plans &Context::plans() const noexcept
    {
        return *s_->plans;
    }

    const SeededTemplate *Context::seeded_template() const noexcept
    {
        return s_->seeded_template ? &*s_->seeded_template : nullptr;
    }

    const PackLayout *Context::pack_layout(Mode mode) const noexcept
    {
        const auto &layout = mode == Mode::symmetric ? s_->seeded_layout : s_->full_layout;
        return layout ? &*layout : nullptr;
    }

    std::string Context::seal_parameters_bytes() const
    {
        return seal_save(s_->parms);
    }

    std::string Context::seal_public_key_bytes() const
    {
        return seal_save(s_->public_key);
    }

    std::string Context::seal_secret_key_bytes() const
    {
        return seal_save(secret_key());
    }
} // namespace fhto
