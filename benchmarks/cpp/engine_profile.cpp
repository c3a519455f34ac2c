// One phase of the engine's C++ entry points in a loop, for a sampling profiler (the Python
// module's internal symbols are hidden; this binary keeps them):
//
//   cmake -S . -B build/cpp-bench -DCMAKE_BUILD_TYPE=Release -DFHTO_BUILD_PYTHON=OFF -DFHTO_BUILD_BENCHMARKS=ON
//   cmake --build build/cpp-bench --target engine_profile
//   perf record -e cpu-clock -F 25000 -o encrypt.data build/cpp-bench/engine_profile encrypt
//   perf report -i encrypt.data --no-children --sort symbol
//
//   engine_profile encrypt|add|decrypt [--ciphertexts K] [--repeats R]
//
// Compact preset, one thread, K ciphertexts (default 1000) of float32 values, random seeds (the
// production path). The phase runs R times (default 30) into reused buffers; the others run once
// to make its inputs. Prints the best microseconds per ciphertext of each phase.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "aggregate.h"
#include "context.h"
#include "decrypt.h"
#include "encrypt.h"
#include "params.h"
#include "wire.h"

namespace
{
    using Clock = std::chrono::steady_clock;

    template <typename F>
    double best_micros(std::size_t repeats, std::size_t count, F &&run)
    {
        double best = 1e300;
        for (std::size_t r = 0; r < repeats; r++)
        {
            const auto start = Clock::now();
            run();
            best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - start).count() / count);
        }
        return best;
    }
} // namespace

int main(int argc, char **argv)
{
    const std::string phase = argc > 1 ? argv[1] : "";
    std::size_t count = 1000, repeats = 30;
    for (int i = 2; i + 1 < argc; i += 2)
    {
        if (std::strcmp(argv[i], "--ciphertexts") == 0)
        {
            count = std::stoul(argv[i + 1]);
        }
        else if (std::strcmp(argv[i], "--repeats") == 0)
        {
            repeats = std::stoul(argv[i + 1]);
        }
    }
    if (phase != "encrypt" && phase != "add" && phase != "decrypt")
    {
        std::fprintf(stderr, "usage: %s encrypt|add|decrypt [--ciphertexts K] [--repeats R]\n", argv[0]);
        return 2;
    }
    fhto::Params params;
    params.poly_modulus_degree = 4096;
    params.coeff_modulus_bits = { 56 };
    params.scale_bits = 37;
    params.packing = fhto::Packing::bits;
    const fhto::Context engine = fhto::Context::generate(params);
    std::vector<float> values(count * params.poly_modulus_degree);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (auto &v : values)
    {
        v = static_cast<float>(uniform(rng));
    }

    fhto::EncryptOptions options;
    options.packing = params.packing;
    options.threads = 1;
    options.parties = static_cast<std::uint32_t>(repeats + 2);
    std::vector<std::uint8_t> batch(fhto::encrypted_size(engine, values.size(), options.mode, options.packing));
    const double encrypt = best_micros(phase == "encrypt" ? repeats : 1, count, [&] {
        fhto::encrypt_into(engine, values.data(), values.size(), options, batch.data(), batch.size());
    });

    fhto::Accumulator acc(engine.public_only(), 1);
    acc.add(batch.data(), batch.size());
    const double add = best_micros(phase == "add" ? repeats : 1, count, [&] { acc.add(batch.data(), batch.size()); });

    std::vector<std::uint8_t> total(acc.serialized_size(params.packing));
    acc.serialize_into(total.data(), total.size(), params.packing);
    const fhto::BatchView view = fhto::parse_batch(engine, total.data(), total.size());
    std::vector<double> out(values.size());
    const double decrypt = best_micros(phase == "decrypt" ? repeats : 1, count, [&] {
        fhto::decrypt_into(engine, view, out.data(), out.size(), 1);
    });
    std::printf("{\"phase\": \"%s\", \"ciphertexts\": %zu, \"encrypt_us\": %.1f, \"add_us\": %.1f, \"decrypt_us\": %.1f}\n",
                phase.c_str(), count, encrypt, add, decrypt);
    return 0;
}
