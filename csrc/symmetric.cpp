#include "symmetric.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#if defined(__linux__)
#include <sys/random.h>
#endif
#include <vector>
#include "bytes.h"
#include "cuda/encrypt.cuh"
#include "cuda/sample.cuh"
#include "dispatch.h"
#include "errors.h"
#include "noise.h"
#include "ntt.h"
#include "pack.h"
#include "plans.h"
#include "simd.h"
#include "seal/util/ntt.h"
#include "seal/util/polyarithsmallmod.h"
#include "seal/util/uintarithsmallmod.h"

namespace fhto
{
    Seed random_seed()
    {
        Seed seed;
#if defined(__linux__)
        // One system call for all 64 bytes (the kernel's CSPRNG), where SEAL reads std::random_device 16 times.
        auto *p = reinterpret_cast<std::uint8_t *>(seed.data());
        std::size_t left = sizeof(seed);
        while (left)
        {
            const ssize_t got = getrandom(p, left, 0);
            if (got < 0)
            {
                if (errno == EINTR)
                {
                    continue;
                }
                throw std::runtime_error("the operating system's random number generator failed");
            }
            p += got;
            left -= static_cast<std::size_t>(got);
        }
#else
        thread_local std::random_device rd;
        for (auto &s : seed)
        {
            s = static_cast<std::uint64_t>(rd()) + (static_cast<std::uint64_t>(rd()) << 32);
        }
#endif
        return seed;
    }

    NoiseSource noise_source(bool seeded) noexcept
    {
        static const int forced = [] {
            const std::string want = detail::forced_path("FHTO_NOISE");
            return want == "seal" ? 1 : want == "aes" ? 2 : 0;
        }();
        if (forced == 1 || !AesCtrStream::available())
        {
            return NoiseSource::seal;
        }
        return forced == 2 || !seeded ? NoiseSource::aes_ctr : NoiseSource::seal;
    }

    const char *noise_source_name(NoiseSource source) noexcept
    {
        return source == NoiseSource::aes_ctr ? "aes_ctr" : "seal";
    }

    namespace
    {

#ifdef FHTO_SIMD
        /**
        Reduces words [i, i + 4) of one limb where none is rejected (SEAL's barrett_reduce_64,
        lane by lane); returns false, touching nothing, if one is: the caller then takes them in
        order, one at a time.
        */
        FHTO_SIMD_TARGET inline bool reduce_four(std::uint64_t *words, std::uint64_t max_multiple, std::uint64_t ratio_hi,
                                                 std::uint64_t q) noexcept
        {
            const __m256i w = simd::load(words);
            if (_mm256_cmpge_epu64_mask(w, simd::broadcast(max_multiple)) != 0)
            {
                return false;
            }
            const __m256i vq = simd::broadcast(q);
            const __m256i r = _mm256_sub_epi64(w, _mm256_mullo_epi64(simd::mulhi(w, simd::broadcast(ratio_hi)), vq));
            simd::store(words, simd::reduce_once(r, vq));
            return true;
        }

        FHTO_SIMD_TARGET void reduce_limb_simd(Blake2xbStream &stream, const seal::Modulus &modulus, std::uint64_t max_multiple,
                                               std::size_t n, std::uint64_t *words) noexcept
        {
            for (std::size_t i = 0; i < n; i += 4)
            {
                if (reduce_four(words + i, max_multiple, modulus.const_ratio()[1], modulus.value()))
                {
                    continue;
                }
                for (std::size_t j = i; j < i + 4; j++)
                {
                    std::uint64_t rand = words[j];
                    while (rand >= max_multiple)
                    {
                        rand = stream.next_word();
                    }
                    words[j] = seal::util::barrett_reduce_64(rand, modulus);
                }
            }
            _mm256_zeroupper();
        }
#endif

        void sample_uniform(
            Blake2xbStream &stream, const std::vector<seal::Modulus> &moduli, std::size_t n, std::uint64_t *destination)
        {
            constexpr std::uint64_t max_random = 0xFFFFFFFFFFFFFFFFULL;
            stream.generate(reinterpret_cast<std::uint8_t *>(destination), moduli.size() * n * 8);
            for (const auto &modulus : moduli)
            {
                const std::uint64_t max_multiple = max_random - seal::util::barrett_reduce_64(max_random, modulus) - 1;
#if defined(FHTO_SIMD) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                if (simd::available() && n % 4 == 0)
                {
                    reduce_limb_simd(stream, modulus, max_multiple, n, destination);
                    destination += n;
                    continue;
                }
#endif
                for (std::size_t i = 0; i < n; i++)
                {
                    std::uint64_t rand = detail::get_le<std::uint64_t>(reinterpret_cast<std::uint8_t *>(destination + i));
                    while (rand >= max_multiple)
                    {
                        rand = stream.next_word();
                    }
                    destination[i] = seal::util::barrett_reduce_64(rand, modulus);
                }
                destination += n;
            }
        }

        const std::vector<seal::Modulus> &data_moduli(const Context &context)
        {
            return context.seal_context().first_context_data()->parms().coeff_modulus();
        }
    } // namespace

    void expand_uniform(const Context &context, const Seed &seed, std::uint64_t *destination)
    {
        Blake2xbStream stream(seed);
        sample_uniform(stream, data_moduli(context), context.params().poly_modulus_degree, destination);
    }

    namespace
    {
#if defined(FHTO_SIMD) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FHTO_NOISE_AVX512 1
        /**
        SEAL's centred binomial noise, 8 coefficients at a time: a byte permute (VBMI) puts each
        coefficient's 6 bytes in the low bytes of its own word, whose two 21-bit halves (bytes 0-2
        and 3-5, each third byte's top 3 bits dropped) are counted with VPOPCNTQ; negative noise
        gets q added, as cuda::noise_residue does.
        */
        __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vpopcntdq"))) void noise_residues_avx512(
            const std::uint8_t *bytes, std::size_t n, const std::vector<cuda::UniformPrime> &primes,
            std::uint64_t *e) noexcept
        {
            alignas(64) std::uint8_t index[64] = {};
            std::uint64_t keep = 0;
            for (std::size_t j = 0; j < 64; j++)
            {
                if (j % 8 < 6)
                {
                    index[j] = static_cast<std::uint8_t>(6 * (j / 8) + j % 8);
                    keep |= 1ULL << j;
                }
            }
            const __m512i spread = _mm512_load_si512(index);
            const __m512i half = _mm512_set1_epi64(0x1FFFFF);
            for (std::size_t i = 0; i < n; i += 8)
            {
                const __m512i raw = _mm512_maskz_loadu_epi8((1ULL << 48) - 1, bytes + 6 * i);
                const __m512i w = _mm512_maskz_permutexvar_epi8(keep, spread, raw);
                const __m512i noise = _mm512_sub_epi64(_mm512_popcnt_epi64(_mm512_and_si512(w, half)),
                                                       _mm512_popcnt_epi64(_mm512_and_si512(_mm512_srli_epi64(w, 24), half)));
                const __mmask8 negative = _mm512_cmplt_epi64_mask(noise, _mm512_setzero_si512());
                for (std::size_t l = 0; l < primes.size(); l++)
                {
                    const __m512i q = _mm512_set1_epi64(static_cast<long long>(primes[l].q));
                    _mm512_storeu_si512(e + l * n + i, _mm512_mask_add_epi64(noise, negative, noise, q));
                }
            }
        }
#endif
    } // namespace

    void noise_residues(const std::uint8_t *bytes, std::size_t n, const std::vector<cuda::UniformPrime> &primes,
                        std::uint64_t *e) noexcept
    {
#ifdef FHTO_NOISE_AVX512
        static const bool vector = detail::forced_path("FHTO_ENCODE") != "scalar" &&
                                   __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                   __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vpopcntdq");
        if (vector && n % 8 == 0)
        {
            noise_residues_avx512(bytes, n, primes, e);
            return;
        }
#endif
        for (std::size_t i = 0; i < n; i++)
        {
            const int noise = cuda::cbd_noise(bytes + 6 * i);
            for (std::size_t l = 0; l < primes.size(); l++)
            {
                e[l * n + i] = cuda::noise_residue(noise, primes[l].q);
            }
        }
    }

    namespace
    {
        template <typename Stream>
        Seed draw_from(const Seed &bootstrap_seed, std::uint8_t *noise, std::size_t noise_bytes)
        {
            Stream stream(bootstrap_seed);
            std::uint8_t bytes[64];
            stream.generate(bytes, sizeof(bytes));
            stream.generate(noise, noise_bytes);
            Seed public_seed;
            for (std::size_t i = 0; i < public_seed.size(); i++)
            {
                public_seed[i] = detail::get_le<std::uint64_t>(bytes + 8 * i);
            }
            return public_seed;
        }
    } // namespace

    Seed draw_bootstrap(const Seed &bootstrap_seed, NoiseSource source, std::uint8_t *noise, std::size_t noise_bytes)
    {
        return source == NoiseSource::aes_ctr ? draw_from<AesCtrStream>(bootstrap_seed, noise, noise_bytes)
                                              : draw_from<Blake2xbStream>(bootstrap_seed, noise, noise_bytes);
    }

    void encrypt_symmetric_seeded(
        const Context &context, const seal::Plaintext &plain, const Seed &bootstrap_seed, seal::Ciphertext &destination,
        NoiseSource source)
    {
        const seal::SecretKey &secret_key = context.secret_key();
        const auto &seal_context = context.seal_context();
        const auto &context_data = *seal_context.first_context_data();
        const auto &moduli = context_data.parms().coeff_modulus();
        const std::size_t limbs = moduli.size();
        const std::size_t n = context.params().poly_modulus_degree;
        const auto *ntt_tables = context_data.small_ntt_tables();

        destination.resize(seal_context, seal_context.first_parms_id(), 2);
        destination.is_ntt_form() = true;
        destination.correction_factor() = 1;
        std::uint64_t *c0 = destination.data(0);
        std::uint64_t *c1 = destination.data(1);

        // The bootstrap stream: the public seed, then centered binomial noise, 6 bytes per coefficient.
        thread_local std::vector<std::uint8_t> bytes;
        bytes.resize(6 * n);
        const Seed public_seed = draw_bootstrap(bootstrap_seed, source, bytes.data(), bytes.size());
        expand_uniform(context, public_seed, c1);
        thread_local std::vector<std::uint64_t> noise;
        noise.resize(limbs * n);
        noise_residues(bytes.data(), n, context.plans().encoder(context).primes, noise.data());
        for (std::size_t j = 0; j < limbs; j++)
        {
            std::uint64_t *c0j = c0 + j * n;
            std::uint64_t *ej = noise.data() + j * n;
            seal::util::dyadic_product_coeffmod(secret_key.data().data() + j * n, c1 + j * n, n, moduli[j], c0j);
            ntt_forward(ej, ntt_tables[j]);
            seal::util::add_poly_coeffmod(ej, c0j, n, moduli[j], c0j);
            seal::util::negate_poly_coeffmod(c0j, n, moduli[j], c0j);
            seal::util::add_poly_coeffmod(c0j, plain.data() + j * n, n, moduli[j], c0j);
        }
        destination.scale() = plain.scale();

        // The seeded form: an all-ones marker word, then SEAL's own record of the PRNG and seed.
        seal::UniformRandomGeneratorInfo info(seal::prng_type::blake2xb, public_seed);
        c1[0] = 0xFFFFFFFFFFFFFFFFULL;
        info.save(
            reinterpret_cast<seal::seal_byte *>(c1 + 1),
            static_cast<std::size_t>(seal::UniformRandomGeneratorInfo::SaveSize(seal::compr_mode_type::none)),
            seal::compr_mode_type::none);
    }

    namespace
    {
        /** Checks the bytes against the context's template and every c0 word against its prime. */
        const std::uint8_t *seeded_words(const Context &context, const std::uint8_t *data, std::size_t size, Seed &seed)
        {
            const SeededTemplate *t = context.seeded_template();
            if (!t || size != t->total_bytes || std::memcmp(data, t->prefix.data(), t->prefix.size()) != 0 ||
                std::memcmp(data + t->seed_record_offset, t->seed_record_header.data(), t->seed_record_header.size()) !=
                    0)
            {
                return nullptr;
            }
            const auto &moduli = data_moduli(context);
            const std::size_t n = context.params().poly_modulus_degree;
            const std::uint8_t *words = data + t->prefix.size();
            for (std::size_t j = 0; j < moduli.size(); j++)
            {
                const std::uint64_t q = moduli[j].value();
                std::uint64_t bad = 0;
                for (std::size_t i = 0; i < n; i++)
                {
                    bad |= static_cast<std::uint64_t>(detail::get_le<std::uint64_t>(words + 8 * (j * n + i)) >= q);
                }
                if (bad)
                {
                    return nullptr;
                }
            }
            const std::uint8_t *seed_bytes = data + t->seed_record_offset + t->seed_record_header.size();
            for (std::size_t i = 0; i < seed.size(); i++)
            {
                seed[i] = detail::get_le<std::uint64_t>(seed_bytes + 8 * i);
            }
            return words;
        }

        /** dst = (dst + src) mod q over n words, src given as little-endian bytes or words. */
        template <typename Src>
        void add_mod(std::uint64_t *dst, Src src, std::size_t n, std::uint64_t q) noexcept
        {
            for (std::size_t i = 0; i < n; i++)
            {
                const std::uint64_t r = dst[i] + src(i);
                dst[i] = r >= q ? r - q : r;
            }
        }
    } // namespace

    bool try_load_seeded(const Context &context, const std::uint8_t *data, std::size_t size, seal::Ciphertext &destination)
    {
        Seed seed;
        const std::uint8_t *words = seeded_words(context, data, size, seed);
        if (!words)
        {
            return false;
        }
        const auto &seal_context = context.seal_context();
        const std::size_t count = context.params().poly_modulus_degree * data_moduli(context).size();
        destination.resize(seal_context, seal_context.first_parms_id(), 2);
        destination.is_ntt_form() = true;
        destination.scale() = context.scale();
        destination.correction_factor() = 1;
        std::uint64_t *c0 = destination.data(0);
        for (std::size_t i = 0; i < count; i++)
        {
            c0[i] = detail::get_le<std::uint64_t>(words + 8 * i);
        }
        expand_uniform(context, seed, destination.data(1));
        return true;
    }

    bool try_add_seeded(const Context &context, const std::uint8_t *data, std::size_t size, seal::Ciphertext &sum)
    {
        Seed seed;
        const std::uint8_t *words = seeded_words(context, data, size, seed);
        if (!words)
        {
            return false;
        }
        const auto &moduli = data_moduli(context);
        const std::size_t n = context.params().poly_modulus_degree;
        thread_local std::vector<std::uint64_t> c1;
        c1.resize(moduli.size() * n);
        expand_uniform(context, seed, c1.data());
        for (std::size_t j = 0; j < moduli.size(); j++)
        {
            const std::uint8_t *w = words + 8 * j * n;
            add_mod(sum.data(0) + j * n, [w](std::size_t i) { return detail::get_le<std::uint64_t>(w + 8 * i); }, n,
                    moduli[j].value());
            const std::uint64_t *u = c1.data() + j * n;
            add_mod(sum.data(1) + j * n, [u](std::size_t i) { return u[i]; }, n, moduli[j].value());
        }
        return true;
    }

    namespace
    {
#ifdef FHTO_SIMD
        FHTO_SIMD_TARGET void add_limb_simd(std::uint64_t *sum, const std::uint64_t *x, std::size_t n, std::uint64_t q) noexcept
        {
            const __m256i vq = simd::broadcast(q);
            for (std::size_t i = 0; i < n; i += 4)
            {
                simd::store(sum + i, simd::reduce_once(_mm256_add_epi64(simd::load(sum + i), simd::load(x + i)), vq));
            }
            _mm256_zeroupper();
        }

        FHTO_SIMD_TARGET bool below_simd(const std::uint64_t *x, std::size_t n, std::uint64_t q) noexcept
        {
            const __m256i vq = simd::broadcast(q);
            __mmask8 bad = 0;
            for (std::size_t i = 0; i < n; i += 4)
            {
                bad |= _mm256_cmpge_epu64_mask(simd::load(x + i), vq);
            }
            _mm256_zeroupper();
            return bad == 0;
        }
#endif

        /** sum = (sum + x) mod q over n words, every input below q. */
        void add_limb(std::uint64_t *sum, const std::uint64_t *x, std::size_t n, std::uint64_t q) noexcept
        {
#ifdef FHTO_SIMD
            if (simd::available() && n % 4 == 0)
            {
                add_limb_simd(sum, x, n, q);
                return;
            }
#endif
            add_mod(sum, [x](std::size_t i) { return x[i]; }, n, q);
        }

        /** Whether every one of n words is below q. */
        bool below(const std::uint64_t *x, std::size_t n, std::uint64_t q) noexcept
        {
#ifdef FHTO_SIMD
            if (simd::available() && n % 4 == 0)
            {
                return below_simd(x, n, q);
            }
#endif
            std::uint64_t bad = 0;
            for (std::size_t i = 0; i < n; i++)
            {
                bad |= static_cast<std::uint64_t>(x[i] >= q);
            }
            return bad == 0;
        }
    } // namespace

    bool add_seeded_record(const Context &context, const cuda::SumPlan &plan, const std::uint8_t *record, seal::Ciphertext &sum)
    {
        if (std::memcmp(record, plan.prefix.data(), plan.prefix.size()) != 0 ||
            std::memcmp(record + plan.seed_offset - plan.seed_header.size(), plan.seed_header.data(), plan.seed_header.size()) != 0)
        {
            return false;
        }
        const std::size_t n = plan.n(), limbs = plan.limbs;
        const cuda::RecordLayout layout = plan.layout();
        thread_local std::vector<std::uint64_t> c0, a;
        c0.resize(limbs * n);
        a.resize(limbs * n);
        for (std::size_t l = 0; l < limbs; l++)
        {
            const std::uint8_t *limb = record + plan.c0_offset + cuda::limb_offset(layout, n, static_cast<int>(l));
            std::uint64_t *dst = c0.data() + l * n;
            if (plan.bits[l])
            {
                unpack_limb(limb, n, plan.bits[l], dst);
            }
            else
            {
                for (std::size_t i = 0; i < n; i++)
                {
                    dst[i] = detail::get_le<std::uint64_t>(limb + 8 * i);
                }
            }
            if (!below(dst, n, plan.primes[l].q))
            {
                return false;
            }
        }
        Seed seed;
        cuda::read_seed(layout, record, seed.data());
        expand_uniform(context, seed, a.data());
        for (std::size_t l = 0; l < limbs; l++)
        {
            add_limb(sum.data(0) + l * n, c0.data() + l * n, n, plan.primes[l].q);
            add_limb(sum.data(1) + l * n, a.data() + l * n, n, plan.primes[l].q);
        }
        return true;
    }
} // namespace fhto

#include "seal/util/rlwe.h"

namespace fhto
{
    std::size_t check_against_seal(const Context &context, std::size_t trials)
    {
        const auto &seal_context = context.seal_context();
        const auto &parms = seal_context.first_context_data()->parms();
        const std::size_t n = context.params().poly_modulus_degree;
        const std::size_t words = n * parms.coeff_modulus().size();
        std::size_t checks = 0;
        auto fail = [](const std::string &what) { throw std::logic_error("disagrees with SEAL: " + what); };
        for (std::size_t t = 0; t < trials; t++)
        {
            const Seed seed = random_seed();

            // 1. The PRNG stream, read in uneven pieces across refills.
            auto seal_prng = seal::UniformRandomGeneratorInfo(seal::prng_type::blake2xb, seed).make_prng();
            Blake2xbStream ours(seed);
            std::vector<std::uint8_t> a(3 * Blake2xbStream::kBlockBytes + 777), b(a.size());
            for (std::size_t pos = 0, step = 1; pos < a.size(); pos += step, step = step * 3 % 1000 + 1)
            {
                const std::size_t len = std::min(step, a.size() - pos);
                seal_prng->generate(len, reinterpret_cast<seal::seal_byte *>(a.data() + pos));
                ours.generate(b.data() + pos, len);
            }
            if (a != b)
            {
                fail("Blake2xb stream");
            }
            checks++;

            // 2. Uniform sampling of c1 from a seed.
            std::vector<std::uint64_t> u1(words), u2(words);
            seal::util::sample_poly_uniform(
                seal::UniformRandomGeneratorInfo(seal::prng_type::blake2xb, seed).make_prng(), parms, u1.data());
            expand_uniform(context, seed, u2.data());
            if (u1 != u2)
            {
                fail("uniform sampling");
            }
            checks++;

            // 3. A whole seeded encryption, given the same bootstrap seed.
            if (context.has_secret_key())
            {
                seal::EncryptionParameters seeded_parms = seal_context.key_context_data()->parms();
                seeded_parms.set_random_generator(std::make_shared<seal::Blake2xbPRNGFactory>(seed));
                seal::SEALContext seeded_context(seeded_parms, true, seal::sec_level_type::tc128);
                seal::Encryptor seal_encryptor(seeded_context, context.secret_key());
                std::vector<std::complex<double>> values(n / 2);
                std::mt19937_64 rng(seed[0]);
                std::uniform_real_distribution<double> uniform(-1.0, 1.0);
                for (auto &v : values)
                {
                    v = { uniform(rng), uniform(rng) };
                }
                seal::Plaintext plain;
                context.encoder().encode(values, context.scale(), plain);
                std::stringstream expected, actual;
                seal_encryptor.encrypt_symmetric(plain).save(expected, seal::compr_mode_type::none);
                seal::Ciphertext ct;
                encrypt_symmetric_seeded(context, plain, seed, ct, NoiseSource::seal);
                ct.save(actual, seal::compr_mode_type::none);
                if (expected.str() != actual.str())
                {
                    fail("seeded symmetric encryption");
                }
                checks++;

                // 4. Loading it back: the fast path and SEAL's loader give the same ciphertext.
                const std::string bytes = actual.str();
                seal::Ciphertext fast, reference;
                if (!try_load_seeded(context, reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size(), fast))
                {
                    fail("the fast loader refused SEAL's own bytes");
                }
                reference.load(seal_context, reinterpret_cast<const seal::seal_byte *>(bytes.data()), bytes.size());
                if (!std::equal(fast.data(), fast.data() + 2 * words, reference.data()) ||
                    fast.scale() != reference.scale() || fast.parms_id() != reference.parms_id())
                {
                    fail("seeded ciphertext loading");
                }
                checks++;
            }
        }
        return checks;
    }
} // namespace fhto
