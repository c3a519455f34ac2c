#include "multiparty.h"

#include <algorithm>
#include <complex>
#include <cstring>
#include <set>
#include <string>
#include "bytes.h"
#include "decrypt.h"
#include "errors.h"
#include "parallel.h"
#include "symmetric.h"
#include "seal/util/ntt.h"
#include "seal/util/polyarithsmallmod.h"
#include "seal/util/blake2.h"
#include "seal/util/iterator.h"
#include "seal/util/rlwe.h"
#include "seal/util/rns.h"
#include "seal/util/uintarithsmallmod.h"

namespace fhto
{
    namespace
    {
        using u64 = std::uint64_t;
        using u128 = unsigned __int128;

        seal::SEALContext make_context(const Params &params)
        {
            seal::SEALContext ctx(make_seal_parameters(params), true, seal::sec_level_type::tc128);
            if (!ctx.parameters_set())
            {
                throw ParameterError(
                    std::string("SEAL rejected the parameters (") + describe(params) + "): " + ctx.parameter_error_message());
            }
            return ctx;
        }

        void check_words(std::size_t got, std::size_t want, const char *what)
        {
            if (got != want)
            {
                throw ParameterError(
                    std::string(what) + " holds " + std::to_string(got) + " words; these parameters need " +
                    std::to_string(want));
            }
        }

        /** A Blake2xb stream handing out 64-bit words from a 4 KiB buffer. */
        class WordStream
        {
        public:
            explicit WordStream(const Seed &seed) : stream_(seed)
            {}

            u64 next()
            {
                if (head_ == kWords)
                {
                    stream_.generate(reinterpret_cast<std::uint8_t *>(buffer_), sizeof(buffer_));
                    head_ = 0;
                }
                return buffer_[head_++];
            }

        private:
            static constexpr std::size_t kWords = 512;
            Blake2xbStream stream_;
            u64 buffer_[kWords];
            std::size_t head_ = kWords;
        };

        /** Uniform modulo q by rejection (SEAL's rule: reject the incomplete last multiple). */
        u64 uniform_mod(WordStream &words, const seal::Modulus &q)
        {
            const u64 max_multiple = ~u64{ 0 } - seal::util::barrett_reduce_64(~u64{ 0 }, q) - 1;
            u64 r = words.next();
            while (r >= max_multiple)
            {
                r = words.next();
            }
            return seal::util::barrett_reduce_64(r, q);
        }

        /** The data modulus q split for Garner's CRT: q0, q1 and q0^-1 mod q1 (one or two primes). */
        struct Crt
        {
            std::vector<seal::Modulus> moduli;
            u64 q0_inv_mod_q1 = 0;
            u128 q = 0;
            int q_bits = 0;

            explicit Crt(const Context &context)
                : moduli(context.seal_context().first_context_data()->parms().coeff_modulus())
            {
                if (moduli.size() > 2)
                {
                    throw ParameterError(
                        "multiparty decryption supports one or two data primes; these parameters have " +
                        std::to_string(moduli.size()));
                }
                q = moduli[0].value();
                if (moduli.size() == 2)
                {
                    seal::util::try_invert_uint_mod(moduli[0].value() % moduli[1].value(), moduli[1], q0_inv_mod_q1);
                    q *= moduli[1].value();
                }
                q_bits = 0;
                for (u128 v = q; v; v >>= 1)
                {
                    q_bits++;
                }
            }

            /** The integer in [0, q) with the given residues. */
            u128 compose(const u64 *residues) const noexcept
            {
                if (moduli.size() == 1)
                {
                    return residues[0];
                }
                const auto &q1 = moduli[1];
                const u64 a0_mod_q1 = seal::util::barrett_reduce_64(residues[0], q1);
                const u64 diff = seal::util::sub_uint_mod(residues[1], a0_mod_q1, q1);
                const u64 t = seal::util::multiply_uint_mod(diff, q0_inv_mod_q1, q1);
                return static_cast<u128>(residues[0]) + static_cast<u128>(moduli[0].value()) * t;
            }
        };

        /** F mod q for a signed 64-bit F. */
        inline u64 signed_mod(std::int64_t f, const seal::Modulus &q) noexcept
        {
            if (f >= 0)
            {
                return seal::util::barrett_reduce_64(static_cast<u64>(f), q);
            }
            const u64 r = seal::util::barrett_reduce_64(static_cast<u64>(-(f + 1)) + 1, q);
            return r == 0 ? 0 : q.value() - r;
        }

        /** Writes `count` values of `bits` bits each, least significant bit first, into out (zeroed first). */
        void put_bits(const u64 *values, std::size_t count, int bits, std::uint8_t *out) noexcept
        {
            std::size_t bit = 0;
            const std::size_t total_bytes = (count * static_cast<std::size_t>(bits) + 7) / 8;
            std::memset(out, 0, total_bytes);
            for (std::size_t i = 0; i < count; i++)
            {
                u64 v = values[i];
                int left = bits;
                while (left > 0)
                {
                    const std::size_t byte = bit >> 3;
                    const int offset = static_cast<int>(bit & 7);
                    const int take = std::min(8 - offset, left);
                    out[byte] |= static_cast<std::uint8_t>((v & ((1u << take) - 1)) << offset);
                    v >>= take;
                    left -= take;
                    bit += static_cast<std::size_t>(take);
                }
            }
        }

        void get_bits(const std::uint8_t *in, std::size_t count, int bits, u64 *values) noexcept
        {
            std::size_t bit = 0;
            for (std::size_t i = 0; i < count; i++)
            {
                u64 v = 0;
                int got = 0;
                while (got < bits)
                {
                    const std::size_t byte = bit >> 3;
                    const int offset = static_cast<int>(bit & 7);
                    const int take = std::min(8 - offset, bits - got);
                    v |= static_cast<u64>((in[byte] >> offset) & ((1u << take) - 1)) << got;
                    got += take;
                    bit += static_cast<std::size_t>(take);
                }
                values[i] = v;
            }
        }

        void check_round_bits(const Crt &crt, int round_bits)
        {
            if (round_bits < 0 || round_bits >= crt.q_bits || crt.q_bits - round_bits > 63)
            {
                throw ParameterError(
                    "round_bits must leave between 1 and 63 bits of the " + std::to_string(crt.q_bits) +
                    "-bit data modulus; got " + std::to_string(round_bits));
            }
        }
    } // namespace

    void encrypt_asymmetric_seeded(
        const Context &context, const seal::Plaintext &plain, const Seed &seed, seal::Ciphertext &destination)
    {
        const auto &ctx = context.seal_context();
        const auto &key_data = *ctx.key_context_data();
        const auto &data = *ctx.first_context_data();
        const auto &key_parms = key_data.parms();
        const auto &key_moduli = key_parms.coeff_modulus();
        const std::size_t n = key_parms.poly_modulus_degree();
        const std::size_t key_limbs = key_moduli.size();
        const std::size_t data_limbs = data.parms().coeff_modulus().size();
        const auto *key_tables = key_data.small_ntt_tables();
        const auto &pk = context.public_key().data();
        auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
        auto prng = std::make_shared<seal::Blake2xbPRNG>(seal::prng_seed_type(seed));

        std::vector<u64> u(key_limbs * n), e(key_limbs * n), c(2 * key_limbs * n);
        seal::util::sample_poly_ternary(prng, key_parms, u.data());
        for (std::size_t j = 0; j < key_limbs; j++)
        {
            seal::util::ntt_negacyclic_harvey(u.data() + j * n, key_tables[j]);
        }
        for (std::size_t poly = 0; poly < 2; poly++)
        {
            u64 *cp = c.data() + poly * key_limbs * n;
            for (std::size_t j = 0; j < key_limbs; j++)
            {
                seal::util::dyadic_product_coeffmod(u.data() + j * n, pk.data(poly) + j * n, n, key_moduli[j], cp + j * n);
            }
            seal::util::sample_poly_cbd(prng, key_parms, e.data());
            for (std::size_t j = 0; j < key_limbs; j++)
            {
                seal::util::ntt_negacyclic_harvey(e.data() + j * n, key_tables[j]);
                seal::util::add_poly_coeffmod(e.data() + j * n, cp + j * n, n, key_moduli[j], cp + j * n);
            }
            if (key_limbs != data_limbs)
            {
                key_data.rns_tool()->divide_and_round_q_last_ntt_inplace(
                    seal::util::RNSIter(cp, n), key_tables, pool);
            }
        }
        destination.resize(ctx, data.parms_id(), 2);
        destination.is_ntt_form() = true;
        destination.scale() = plain.scale();
        const auto &data_moduli = data.parms().coeff_modulus();
        for (std::size_t poly = 0; poly < 2; poly++)
        {
            std::copy(c.data() + poly * key_limbs * n, c.data() + poly * key_limbs * n + data_limbs * n, destination.data(poly));
        }
        for (std::size_t j = 0; j < data_limbs; j++)
        {
            seal::util::add_poly_coeffmod(
                destination.data(0) + j * n, plain.data() + j * n, n, data_moduli[j], destination.data(0) + j * n);
        }
        std::fill(u.begin(), u.end(), 0);
        std::fill(e.begin(), e.end(), 0);
    }

    std::size_t check_asymmetric_against_seal(const Context &context, std::size_t trials)
    {
        const std::size_t slots = context.values_per_ciphertext() / 2;
        std::size_t comparisons = 0;
        for (std::size_t t = 0; t < trials; t++)
        {
            const Seed seed = random_seed();
            seal::EncryptionParameters parms = context.seal_context().key_context_data()->parms();
            parms.set_random_generator(std::make_shared<seal::Blake2xbPRNGFactory>(seal::prng_seed_type(seed)));
            seal::SEALContext fixed(parms, true, seal::sec_level_type::tc128);
            seal::Encryptor reference(fixed, context.public_key());
            std::vector<std::complex<double>> values(slots);
            WordStream words(random_seed());
            for (auto &v : values)
            {
                v = { static_cast<double>(words.next() % 2001) / 1000.0 - 1.0, static_cast<double>(words.next() % 2001) / 1000.0 - 1.0 };
            }
            seal::Plaintext plain;
            context.encoder().encode(values, context.scale(), plain);
            seal::Ciphertext ours, theirs;
            encrypt_asymmetric_seeded(context, plain, seed, ours);
            reference.encrypt(plain, theirs);
            if (ours.parms_id() != theirs.parms_id() || ours.size() != theirs.size() ||
                !std::equal(ours.data(), ours.data() + ours.dyn_array().size(), theirs.data()))
            {
                throw std::logic_error("seeded public-key encryption differs from SEAL's (trial " + std::to_string(t) + ")");
            }
            comparisons++;
        }
        return comparisons;
    }

    Ring::Ring(const Params &params) : params_(params), ctx_(make_context(params))
    {}

    const std::vector<seal::Modulus> &Ring::key_moduli() const
    {
        return ctx_.key_context_data()->parms().coeff_modulus();
    }

    const std::vector<seal::Modulus> &Ring::data_moduli() const
    {
        return ctx_.first_context_data()->parms().coeff_modulus();
    }

    std::vector<std::uint64_t> common_polynomial(const Ring &ring, const Seed &seed)
    {
        const auto &parms = ring.context().key_context_data()->parms();
        std::vector<u64> a(ring.key_moduli().size() * ring.n());
        auto prng = std::make_shared<seal::Blake2xbPRNG>(seal::prng_seed_type(seed));
        seal::util::sample_poly_uniform(prng, parms, a.data());
        return a;
    }

    void generate_key_share(
        const Ring &ring, const std::vector<std::uint64_t> &a, const std::optional<Seed> &seed,
        std::vector<std::uint64_t> &secret, std::vector<std::uint64_t> &public_share)
    {
        const auto &key_data = *ring.context().key_context_data();
        const auto &parms = key_data.parms();
        const auto &moduli = ring.key_moduli();
        const std::size_t n = ring.n();
        const std::size_t words = moduli.size() * n;
        check_words(a.size(), words, "the common polynomial");
        // Two generators: the secret's and the noise's, as SEAL's key generator uses two.
        const Seed secret_seed = seed ? *seed : random_seed();
        Seed noise_seed = secret_seed;
        noise_seed[0] ^= 0x6e6f697365ULL; // "noise": a distinct seed derived from the same one
        if (!seed)
        {
            noise_seed = random_seed();
        }
        auto secret_prng = std::make_shared<seal::Blake2xbPRNG>(seal::prng_seed_type(secret_seed));
        auto noise_prng = std::make_shared<seal::Blake2xbPRNG>(seal::prng_seed_type(noise_seed));
        secret.assign(words, 0);
        public_share.assign(words, 0);
        std::vector<u64> noise(words, 0);
        seal::util::sample_poly_ternary(secret_prng, parms, secret.data());
        seal::util::sample_poly_cbd(noise_prng, parms, noise.data());
        const auto *tables = key_data.small_ntt_tables();
        for (std::size_t j = 0; j < moduli.size(); j++)
        {
            u64 *s = secret.data() + j * n;
            u64 *e = noise.data() + j * n;
            u64 *p = public_share.data() + j * n;
            seal::util::ntt_negacyclic_harvey(s, tables[j]);
            seal::util::ntt_negacyclic_harvey(e, tables[j]);
            seal::util::dyadic_product_coeffmod(a.data() + j * n, s, n, moduli[j], p);
            seal::util::add_poly_coeffmod(p, e, n, moduli[j], p);
            seal::util::negate_poly_coeffmod(p, n, moduli[j], p);
        }
        std::fill(noise.begin(), noise.end(), 0);
    }

    Context collective_context(
        const Ring &ring, const std::vector<std::uint64_t> &a, const std::vector<const std::uint64_t *> &public_shares)
    {
        const auto &moduli = ring.key_moduli();
        const std::size_t n = ring.n();
        check_words(a.size(), moduli.size() * n, "the common polynomial");
        if (public_shares.empty())
        {
            throw ParameterError("a collective key needs at least one public share");
        }
        const auto &ctx = ring.context();
        seal::PublicKey pk;
        auto &ct = pk.data();
        ct.resize(ctx, ctx.key_parms_id(), 2);
        u64 *p0 = ct.data(0);
        u64 *p1 = ct.data(1);
        std::fill(p0, p0 + moduli.size() * n, 0);
        for (std::size_t j = 0; j < moduli.size(); j++)
        {
            const u64 q = moduli[j].value();
            for (std::size_t i = 0; i < n; i++)
            {
                const std::size_t at = j * n + i;
                if (a[at] >= q)
                {
                    throw ParameterError("the common polynomial holds a residue out of range");
                }
                p1[at] = a[at];
                for (const u64 *share : public_shares)
                {
                    if (share[at] >= q)
                    {
                        throw ParameterError("a public share holds a residue out of range");
                    }
                    p0[at] = seal::util::add_uint_mod(p0[at], share[at], moduli[j]);
                }
            }
        }
        ct.is_ntt_form() = true;
        pk.parms_id() = ctx.key_parms_id();
        return Context::from_public_key(ring.params(), pk);
    }

    std::vector<std::vector<std::uint64_t>> shamir_split(
        const Ring &ring, const std::uint64_t *secret, std::size_t limbs, std::size_t t,
        const std::vector<std::uint64_t> &xs, const Seed &seed)
    {
        const auto &moduli = ring.key_moduli();
        const std::size_t n = ring.n();
        if (limbs < 1 || limbs > moduli.size())
        {
            throw ParameterError("a Shamir secret spans 1 to " + std::to_string(moduli.size()) + " limbs");
        }
        if (t < 1 || t > xs.size())
        {
            throw ParameterError(
                "the threshold must be between 1 and the number of parties (" + std::to_string(xs.size()) + "); got " +
                std::to_string(t));
        }
        std::set<u64> seen;
        for (u64 x : xs)
        {
            if (x == 0 || !seen.insert(x).second)
            {
                throw ParameterError("Shamir evaluation points must be distinct and non-zero");
            }
        }
        const std::size_t words = limbs * n;
        std::vector<std::vector<u64>> rows(xs.size(), std::vector<u64>(secret, secret + words));
        WordStream stream(seed);
        std::vector<u64> coefficient(words);
        // f(x) = secret + c_1 x + ... + c_{t-1} x^{t-1}: add c_d * x^d to every row, one d at a time.
        for (std::size_t d = 1; d < t; d++)
        {
            for (std::size_t j = 0; j < limbs; j++)
            {
                for (std::size_t i = 0; i < n; i++)
                {
                    coefficient[j * n + i] = uniform_mod(stream, moduli[j]);
                }
            }
            for (std::size_t r = 0; r < xs.size(); r++)
            {
                for (std::size_t j = 0; j < limbs; j++)
                {
                    const auto &q = moduli[j];
                    u64 power = 1;
                    const u64 x = seal::util::barrett_reduce_64(xs[r], q);
                    for (std::size_t e = 0; e < d; e++)
                    {
                        power = seal::util::multiply_uint_mod(power, x, q);
                    }
                    seal::util::MultiplyUIntModOperand op;
                    op.set(power, q);
                    u64 *row = rows[r].data() + j * n;
                    const u64 *c = coefficient.data() + j * n;
                    for (std::size_t i = 0; i < n; i++)
                    {
                        row[i] = seal::util::add_uint_mod(row[i], seal::util::multiply_uint_mod(c[i], op, q), q);
                    }
                }
            }
        }
        std::fill(coefficient.begin(), coefficient.end(), 0);
        return rows;
    }

    std::vector<std::uint64_t> contribution_tag(
        const Context &context, const BatchView &batch, const Seed &round_key, std::size_t repetitions, int threads)
    {
        const auto &moduli = context.seal_context().first_context_data()->parms().coeff_modulus();
        const std::size_t n = context.values_per_ciphertext();
        const std::size_t limbs = moduli.size();
        const std::size_t count = static_cast<std::size_t>(batch.header.ciphertext_count);
        if (repetitions < 1 || repetitions > 8)
        {
            throw ParameterError("tag repetitions must be between 1 and 8");
        }
        std::vector<std::vector<u64>> partial(count, std::vector<u64>(repetitions * limbs, 0));
        detail::parallel_for(count, threads == 0 ? detail::default_threads() : threads, [&](std::size_t k) {
            auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
            check_ciphertext(batch, k);
            seal::Ciphertext ct(pool);
            load_ciphertext(context, batch, k, ct);
            std::uint8_t message[8];
            for (int b = 0; b < 8; b++)
            {
                message[b] = static_cast<std::uint8_t>(static_cast<u64>(k) >> (8 * b));
            }
            Seed stream_seed;
            blake2b(stream_seed.data(), 64, message, 8, round_key.data(), 64);
            WordStream words(stream_seed);
            auto &acc = partial[k];
            for (std::size_t r = 0; r < repetitions; r++)
            {
                for (std::size_t p = 0; p < 2; p++)
                {
                    for (std::size_t l = 0; l < limbs; l++)
                    {
                        const u64 *c = ct.data(p) + l * n;
                        const auto &q = moduli[l];
                        const u64 max_multiple = ~u64{ 0 } - seal::util::barrett_reduce_64(~u64{ 0 }, q) - 1;
                        // Products of two residues below 2^60 summed without reduction: each term is
                        // below 2^120, so 2^7 terms fit 128 bits; reduce every 64 terms.
                        u128 sum = acc[r * limbs + l];
                        for (std::size_t i = 0; i < n; i++)
                        {
                            u64 word = words.next();
                            while (word >= max_multiple)
                            {
                                word = words.next();
                            }
                            sum += static_cast<u128>(seal::util::barrett_reduce_64(word, q)) * c[i];
                            if ((i & 63) == 63)
                            {
                                sum %= q.value();
                            }
                        }
                        acc[r * limbs + l] = static_cast<u64>(sum % q.value());
                    }
                }
            }
        });
        std::vector<u64> tag(repetitions * limbs, 0);
        for (const auto &acc : partial)
        {
            for (std::size_t j = 0; j < tag.size(); j++)
            {
                tag[j] = seal::util::add_uint_mod(tag[j], acc[j], moduli[j % limbs]);
            }
        }
        return tag;
    }

    int share_word_bits(const Context &context, int round_bits)
    {
        const Crt crt(context);
        check_round_bits(crt, round_bits);
        // y = floor((x + 2^(k-1)) / 2^k) for x in [0, q) is at most ceil(q / 2^k).
        const u128 top = ((crt.q - 1) + (round_bits ? (static_cast<u128>(1) << (round_bits - 1)) : 0)) >> round_bits;
        int bits = 0;
        for (u128 v = top; v; v >>= 1)
        {
            bits++;
        }
        return std::max(bits, 1);
    }

    std::size_t share_payload_bytes(const Context &context, std::size_t ciphertexts, int round_bits)
    {
        const std::size_t per_ct = context.values_per_ciphertext() * static_cast<std::size_t>(share_word_bits(context, round_bits));
        return ciphertexts * ((per_ct + 7) / 8);
    }

    void decryption_share_into(
        const Context &context, const BatchView &batch, const std::uint64_t *secret, std::size_t secret_words,
        const std::vector<std::uint64_t> &lambda, const ShareOptions &options, std::uint8_t *out, std::size_t out_size)
    {
        const Crt crt(context);
        check_round_bits(crt, options.round_bits);
        const int w = options.flood_bits;
        if (w < 1 || w > 60)
        {
            throw ParameterError("flood_bits must be between 1 and 60; got " + std::to_string(w));
        }
        const std::size_t n = context.values_per_ciphertext();
        const std::size_t limbs = crt.moduli.size();
        check_words(secret_words, limbs * n, "the secret share");
        if (lambda.size() != limbs)
        {
            throw ParameterError("lambda needs one value per data prime");
        }
        const std::size_t count = static_cast<std::size_t>(batch.header.ciphertext_count);
        const int bits = share_word_bits(context, options.round_bits);
        const std::size_t per_ct = (n * static_cast<std::size_t>(bits) + 7) / 8;
        if (out_size != count * per_ct)
        {
            throw ParameterError("share output holds " + std::to_string(out_size) + " bytes; needs " + std::to_string(count * per_ct));
        }
        std::vector<seal::util::MultiplyUIntModOperand> lam(limbs);
        for (std::size_t j = 0; j < limbs; j++)
        {
            if (lambda[j] >= crt.moduli[j].value())
            {
                throw ParameterError("lambda is out of range for its prime");
            }
            lam[j].set(lambda[j], crt.moduli[j]);
        }
        const auto *tables = context.seal_context().first_context_data()->small_ntt_tables();
        const u64 mask = (w == 64) ? ~u64{ 0 } : ((u64{ 1 } << w) - 1);
        // Centred: the four summands average 2 (2^w - 1) together, so F is symmetric about 0.
        const std::int64_t offset = static_cast<std::int64_t>((u64{ 1 } << (w + 1)) - 2);
        const u128 half = options.round_bits ? (static_cast<u128>(1) << (options.round_bits - 1)) : 0;
        detail::parallel_for(count, options.threads == 0 ? detail::default_threads() : options.threads, [&](std::size_t k) {
            thread_local std::vector<u64> work;
            thread_local std::vector<u64> rounded;
            auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
            check_ciphertext(batch, k);
            seal::Ciphertext ct(pool);
            load_ciphertext(context, batch, k, ct);
            work.resize(limbs * n);
            rounded.resize(n);
            for (std::size_t j = 0; j < limbs; j++)
            {
                u64 *dst = work.data() + j * n;
                seal::util::dyadic_product_coeffmod(ct.data(1) + j * n, secret + j * n, n, crt.moduli[j], dst);
                seal::util::multiply_poly_scalar_coeffmod(dst, n, lam[j], crt.moduli[j], dst);
                seal::util::inverse_ntt_negacyclic_harvey(dst, tables[j]);
            }
            WordStream noise(options.seed ? derive_seed(SeedPurpose::flood, *options.seed, k) : random_seed());
            u64 residues[2];
            for (std::size_t i = 0; i < n; i++)
            {
                const std::int64_t f = static_cast<std::int64_t>((noise.next() & mask) + (noise.next() & mask) +
                                                                 (noise.next() & mask) + (noise.next() & mask)) -
                                       offset;
                for (std::size_t j = 0; j < limbs; j++)
                {
                    residues[j] = seal::util::add_uint_mod(work[j * n + i], signed_mod(f, crt.moduli[j]), crt.moduli[j]);
                }
                rounded[i] = static_cast<u64>((crt.compose(residues) + half) >> options.round_bits);
            }
            put_bits(rounded.data(), n, bits, out + k * per_ct);
        });
    }

    void combine_shares_into(
        const Context &context, const BatchView &batch, const std::vector<const std::uint8_t *> &shares,
        std::size_t share_bytes, int round_bits, double *out, std::size_t out_count, int threads)
    {
        const Crt crt(context);
        const std::size_t n = context.values_per_ciphertext();
        const std::size_t limbs = crt.moduli.size();
        const std::size_t count = static_cast<std::size_t>(batch.header.ciphertext_count);
        const int bits = share_word_bits(context, round_bits);
        const std::size_t per_ct = (n * static_cast<std::size_t>(bits) + 7) / 8;
        if (share_bytes != count * per_ct)
        {
            throw ParameterError(
                "a share holds " + std::to_string(share_bytes) + " bytes; this batch needs " + std::to_string(count * per_ct));
        }
        if (out_count != batch.header.value_count)
        {
            throw ParameterError("output holds " + std::to_string(out_count) + " values; the batch has " +
                                 std::to_string(batch.header.value_count));
        }
        std::vector<seal::util::MultiplyUIntModOperand> two_k(limbs);
        for (std::size_t j = 0; j < limbs; j++)
        {
            const auto &q = crt.moduli[j];
            u64 p = 1;
            for (int b = 0; b < round_bits; b++)
            {
                p = seal::util::add_uint_mod(p, p, q);
            }
            two_k[j].set(p, q);
        }
        const auto *tables = context.seal_context().first_context_data()->small_ntt_tables();
        const auto &encoder = context.encoder();
        const std::size_t per_values = context.values_per_ciphertext();
        detail::parallel_for(count, threads == 0 ? detail::default_threads() : threads, [&](std::size_t k) {
            thread_local std::vector<u64> words;
            thread_local std::vector<std::complex<double>> slots;
            auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
            check_ciphertext(batch, k);
            seal::Ciphertext ct(pool);
            load_ciphertext(context, batch, k, ct);
            seal::Plaintext plain(pool);
            plain.resize(limbs * n);
            u64 *acc = plain.data();
            std::copy(ct.data(0), ct.data(0) + limbs * n, acc);
            for (std::size_t j = 0; j < limbs; j++)
            {
                seal::util::inverse_ntt_negacyclic_harvey(acc + j * n, tables[j]);
            }
            words.resize(n);
            for (const std::uint8_t *share : shares)
            {
                get_bits(share + k * per_ct, n, bits, words.data());
                for (std::size_t j = 0; j < limbs; j++)
                {
                    const auto &q = crt.moduli[j];
                    u64 *a = acc + j * n;
                    for (std::size_t i = 0; i < n; i++)
                    {
                        const u64 y = seal::util::multiply_uint_mod(seal::util::barrett_reduce_64(words[i], q), two_k[j], q);
                        a[i] = seal::util::add_uint_mod(a[i], y, q);
                    }
                }
            }
            for (std::size_t j = 0; j < limbs; j++)
            {
                seal::util::ntt_negacyclic_harvey(acc + j * n, tables[j]);
            }
            plain.parms_id() = ct.parms_id();
            plain.scale() = ct.scale();
            encoder.decode(plain, slots, pool);
            write_slot_values(slots, k, per_values, out, out_count);
        });
    }
} // namespace fhto
