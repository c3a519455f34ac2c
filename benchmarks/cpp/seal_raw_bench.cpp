// The near-limit reference for the engine's speed: the SEAL calls the engine makes, made
// directly from C++ in a plain loop on one thread, per ciphertext, for the same parameters.
// Also times the engine's own C++ entry points (fhto_core) on the same work, so the cost of
// the Python layer and of the engine's checks can be told apart.
//
//   seal_raw_bench [--preset aggregation|compact|conservative] [--ciphertexts K]
//
// Prints one JSON object: microseconds per ciphertext for each phase.

#include <chrono>
#include <complex>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>
#include "aggregate.h"
#include "context.h"
#include "decrypt.h"
#include "encrypt.h"
#include "seal/seal.h"
#include "wire.h"

namespace
{
    using Clock = std::chrono::steady_clock;

    double micros_per(Clock::time_point start, std::size_t count)
    {
        return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / static_cast<double>(count);
    }

    fhto::Params preset(const std::string &name)
    {
        fhto::Params p;
        if (name == "aggregation")
        {
            p.poly_modulus_degree = 4096;
            p.coeff_modulus_bits = { 60 };
            p.scale_bits = 40;
        }
        else if (name == "compact")
        {
            p.poly_modulus_degree = 4096;
            p.coeff_modulus_bits = { 56 };
            p.scale_bits = 37;
            p.packing = fhto::Packing::bits;
        }
        else if (name == "conservative")
        {
            p.poly_modulus_degree = 8192;
            p.coeff_modulus_bits = { 60, 40, 40, 60 };
            p.scale_bits = 40;
        }
        else
        {
            throw std::invalid_argument("unknown preset " + name);
        }
        return p;
    }
} // namespace

int main(int argc, char **argv)
{
    std::string name = "compact";
    std::size_t count = 1000;
    for (int i = 1; i + 1 < argc; i += 2)
    {
        if (std::strcmp(argv[i], "--preset") == 0)
        {
            name = argv[i + 1];
        }
        else if (std::strcmp(argv[i], "--ciphertexts") == 0)
        {
            count = std::stoul(argv[i + 1]);
        }
        else
        {
            std::fprintf(stderr, "usage: %s [--preset NAME] [--ciphertexts K]\n", argv[0]);
            return 2;
        }
    }
    const fhto::Params params = preset(name);
    const std::size_t n = params.poly_modulus_degree;
    const double scale = std::ldexp(1.0, params.scale_bits);

    // Raw SEAL: the same parameters, the same calls, one thread, one ciphertext at a time.
    seal::SEALContext context(fhto::make_seal_parameters(params), true, seal::sec_level_type::tc128);
    seal::KeyGenerator keygen(context);
    seal::Encryptor encryptor(context, keygen.secret_key());
    seal::Decryptor decryptor(context, keygen.secret_key());
    seal::Evaluator evaluator(context);
    seal::CKKSEncoder encoder(context);
    auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);

    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    std::vector<float> values(count * n);
    for (auto &v : values)
    {
        v = static_cast<float>(uniform(rng));
    }

    std::vector<std::complex<double>> slots(n / 2);
    seal::Plaintext plain(pool);
    const std::size_t ct_bytes =
        static_cast<std::size_t>(encryptor.encrypt_zero_symmetric().save_size(seal::compr_mode_type::none));
    // Each phase writes into freshly allocated, untouched memory, as a real upload or result
    // does (the Python API allocates its output per call too).
    auto start = Clock::now();
    std::unique_ptr<std::uint8_t[]> wire(new std::uint8_t[count * ct_bytes]);
    for (std::size_t k = 0; k < count; k++)
    {
        const float *src = values.data() + k * n;
        for (std::size_t j = 0; j < n / 2; j++)
        {
            slots[j] = { static_cast<double>(src[2 * j]), static_cast<double>(src[2 * j + 1]) };
        }
        encoder.encode(slots, scale, plain, pool);
        encryptor.encrypt_symmetric(plain, pool).save(
            reinterpret_cast<seal::seal_byte *>(wire.get() + k * ct_bytes), ct_bytes, seal::compr_mode_type::none);
    }
    const double raw_encrypt = micros_per(start, count);

    std::vector<seal::Ciphertext> sum(count);
    for (std::size_t k = 0; k < count; k++)
    {
        sum[k].load(context, reinterpret_cast<const seal::seal_byte *>(wire.get() + k * ct_bytes), ct_bytes);
    }
    start = Clock::now();
    for (std::size_t k = 0; k < count; k++)
    {
        seal::Ciphertext ct(pool);
        ct.load(context, reinterpret_cast<const seal::seal_byte *>(wire.get() + k * ct_bytes), ct_bytes);
        evaluator.add_inplace(sum[k], ct);
    }
    const double raw_add = micros_per(start, count);

    const std::size_t sum_bytes = static_cast<std::size_t>(sum[0].save_size(seal::compr_mode_type::none));
    std::vector<std::uint8_t> sums(count * sum_bytes);
    for (std::size_t k = 0; k < count; k++)
    {
        sum[k].save(reinterpret_cast<seal::seal_byte *>(sums.data() + k * sum_bytes), sum_bytes, seal::compr_mode_type::none);
    }
    start = Clock::now();
    std::unique_ptr<double[]> decoded(new double[count * n]);
    for (std::size_t k = 0; k < count; k++)
    {
        seal::Ciphertext ct(pool);
        ct.load(context, reinterpret_cast<const seal::seal_byte *>(sums.data() + k * sum_bytes), sum_bytes);
        decryptor.decrypt(ct, plain);
        encoder.decode(plain, slots, pool);
        std::memcpy(decoded.get() + k * n, slots.data(), n * sizeof(double));
    }
    const double raw_decrypt = micros_per(start, count);
    const double checksum = decoded[0];

    // The engine's C++ entry points on the same values, one thread.
    fhto::Context engine = fhto::Context::generate(params);
    fhto::EncryptOptions options;
    options.packing = params.packing;
    options.threads = 1;
    options.parties = 2;
    const std::size_t batch_size = fhto::encrypted_size(engine, values.size(), options.mode, options.packing);
    start = Clock::now();
    std::unique_ptr<std::uint8_t[]> batch(new std::uint8_t[batch_size]);
    fhto::encrypt_into(engine, values.data(), values.size(), options, batch.get(), batch_size);
    const double engine_encrypt = micros_per(start, count);

    fhto::Accumulator acc(engine.public_only(), 1);
    acc.add(batch.get(), batch_size);
    start = Clock::now();
    acc.add(batch.get(), batch_size);
    const double engine_add = micros_per(start, count);

    std::vector<std::uint8_t> total(acc.serialized_size(params.packing));
    acc.serialize_into(total.data(), total.size(), params.packing);
    const fhto::BatchView view = fhto::parse_batch(engine, total.data(), total.size());
    start = Clock::now();
    std::unique_ptr<double[]> out(new double[values.size()]);
    fhto::decrypt_into(engine, view, out.get(), values.size(), 1);
    const double engine_decrypt = micros_per(start, count);

    double worst = 0;
    for (std::size_t i = 0; i < values.size(); i++)
    {
        worst = std::max(worst, std::abs(out[i] - 2.0 * values[i]));
    }

    std::printf(
        "{\"preset\": \"%s\", \"ciphertexts\": %zu, \"values_per_ciphertext\": %zu, "
        "\"raw_seal_us\": {\"encode_encrypt_serialize\": %.3f, \"deserialize_add\": %.3f, \"decrypt_decode\": %.3f}, "
        "\"engine_cpp_us\": {\"encode_encrypt_serialize\": %.3f, \"deserialize_add\": %.3f, \"decrypt_decode\": %.3f}, "
        "\"raw_seal_bytes_per_ciphertext\": %zu, \"engine_max_abs_error\": %.3e, \"raw_checksum\": %.6f}\n",
        name.c_str(), count, n, raw_encrypt, raw_add, raw_decrypt, engine_encrypt, engine_add, engine_decrypt, ct_bytes,
        worst, checksum);
    return worst <= engine.error_bound(2, fhto::Mode::symmetric) ? 0 : 1;
}
