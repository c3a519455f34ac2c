// The server's sum of seeded secret-key batches on the GPU: for each batch, chunk by chunk, every
// record checked (its CRC-32C, its fixed bytes, c0 below the primes) and added: c0 unpacked into the
// running c0 sum, the seed expanded (Blake2xb, SEAL's uniform sampling) into the running c1 sum.
// The running sums stay on the device until the end.

#include <algorithm>
#include <vector>
#include "cuda/api.h"
#include "cuda/device.cuh"
#include "cuda/encrypt.cuh"
#include "cuda/launch.cuh"
#include "cuda/records.cuh"
#include "cuda/uniform.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            __global__ void add_kernel(
                const std::uint8_t *records, const std::uint64_t *a, std::uint64_t cts, int log_n, std::uint64_t limbs,
                RecordLayout layout, const UniformPrime *primes, std::uint64_t *sum_c0, std::uint64_t *sum_c1, unsigned *flags)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, groups = n / 8, t = index();
                if (t >= cts * limbs * groups)
                {
                    return;
                }
                const std::uint64_t ct = t / (limbs * groups), l = (t / groups) % limbs, g = t % groups;
                const std::uint64_t q = primes[l].q;
                std::uint64_t group[8];
                read_group(layout, n, static_cast<int>(l), g, records + ct * layout.record_bytes, group);
                const std::uint64_t base = (ct * limbs + l) * n + 8 * g;
                bool bad = false;
                for (int i = 0; i < 8; i++)
                {
                    bad |= group[i] >= q;
                    sum_c0[base + i] = add_mod(sum_c0[base + i], group[i] >= q ? 0 : group[i], q); // a flagged record is discarded
                    sum_c1[base + i] = add_mod(sum_c1[base + i], a[base + i], q);
                }
                if (bad)
                {
                    atomicOr(flags + ct, kCoefficient);
                }
            }
        } // namespace

        SumProblem sum_device(
            const SumPlan &plan, const SumInput *inputs, std::size_t count, std::uint64_t ciphertexts, std::uint64_t *sum_c0,
            std::uint64_t *sum_c1, int device)
        {
            if (device_count() == 0)
            {
                throw DeviceError("no usable CUDA device");
            }
            const DeviceScope scope(device);
            const std::size_t n = plan.n(), limbs = plan.limbs, record_bytes = plan.record_bytes;
            const std::size_t words = uniform_stream_words(limbs, n), pieces = crc_pieces(record_bytes);
            const std::size_t chunk = std::min<std::size_t>(ciphertexts, 1024);
            const std::vector<UniformPrime> &primes = plan.primes;
            const RecordCrc crc = record_crc(record_bytes);
            std::vector<std::uint8_t> fixed(plan.prefix);
            fixed.insert(fixed.end(), plan.seed_header.begin(), plan.seed_header.end());
            const RecordLayout layout = plan.layout();

            const std::size_t total = static_cast<std::size_t>(ciphertexts) * limbs * n;
            DeviceArray<std::uint64_t> d_c0(total, "allocation of the running sum"), d_c1(total, "allocation of the running sum");
            check(cudaMemset(d_c0.get(), 0, total * 8), "clearing the sum");
            check(cudaMemset(d_c1.get(), 0, total * 8), "clearing the sum");
            const DeviceArray<UniformPrime> d_primes(primes.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint32_t> d_table(crc.table, 256, "allocation of the tables");
            const DeviceArray<std::uint8_t> d_fixed(fixed.data(), fixed.size(), "allocation of the tables");
            DeviceArray<unsigned> d_flags(ciphertexts, "allocation of the flags"), d_failed(ciphertexts, "allocation of the flags");
            check(cudaMemset(d_failed.get(), 0, ciphertexts * sizeof(unsigned)), "clearing the flags");
            DeviceArray<std::uint8_t> d_records(chunk * record_bytes, "allocation of the records"), d_checks(4 * chunk, "allocation of the checks");
            DeviceArray<std::uint64_t> d_seeds(8 * chunk, "allocation of the seeds"), d_stream(chunk * words, "allocation of the streams");
            DeviceArray<std::uint64_t> d_scratch(blake2xb_scratch_words(chunk, words), "allocation of the Blake2xb roots");
            DeviceArray<std::uint64_t> d_a(chunk * limbs * n, "allocation of the expanded seeds");
            DeviceArray<std::uint32_t> d_registers(chunk * pieces, "allocation of the checksums");
            const unsigned threads = 256;
            std::vector<unsigned> flags(ciphertexts);
            for (std::size_t b = 0; b < count; b++)
            {
                check(cudaMemset(d_flags.get(), 0, ciphertexts * sizeof(unsigned)), "clearing the flags");
                for (std::size_t first = 0; first < ciphertexts; first += chunk)
                {
                    const std::size_t cts = std::min<std::size_t>(chunk, ciphertexts - first);
                    check(cudaMemcpy(d_records.get(), inputs[b].records + first * record_bytes, cts * record_bytes, cudaMemcpyHostToDevice), "copy to the device");
                    check(cudaMemcpy(d_checks.get(), inputs[b].checks + 4 * first, 4 * cts, cudaMemcpyHostToDevice), "copy to the device");
                    unsigned *f = d_flags.get() + first;
                    crc_piece_kernel<<<blocks_for(cts * pieces, threads), threads>>>(d_table.get(), d_records.get(), record_bytes, cts, d_registers.get());
                    crc_compare_kernel<<<blocks_for(cts, threads), threads>>>(
                        d_table.get(), d_registers.get(), pieces, first, cts, inputs[b].header_checksum, crc.x_piece, crc.x_last, d_checks.get(), f);
                    layout_kernel<<<blocks_for(cts * fixed.size(), threads), threads>>>(
                        d_records.get(), record_bytes, cts, d_fixed.get(), plan.prefix.size(), plan.seed_header.size(),
                        plan.seed_offset - plan.seed_header.size(), f);
                    seed_gather_kernel<<<blocks_for(cts, threads), threads>>>(d_records.get(), cts, layout, d_seeds.get());
                    check(cudaGetLastError(), "check launch");
                    launch_blake2xb(d_seeds.get(), 8, cts, words, d_scratch.get(), d_stream.get(), nullptr);
                    launch_uniform(d_stream.get(), words, cts, n, limbs, d_primes.get(), d_a.get(), d_failed.get() + first, nullptr);
                    add_kernel<<<blocks_for(cts * limbs * n / 8, threads), threads>>>(
                        d_records.get(), d_a.get(), cts, plan.log_n, limbs, layout, d_primes.get(), d_c0.get() + first * limbs * n,
                        d_c1.get() + first * limbs * n, f);
                    check(cudaGetLastError(), "sum launch");
                }
                d_flags.copy_to(flags.data(), ciphertexts);
                const SumProblem problem = first_problem(flags.data(), ciphertexts, b);
                if (problem.kind != SumProblem::none)
                {
                    return problem;
                }
            }
            d_failed.copy_to(flags.data(), ciphertexts);
            if (std::find(flags.begin(), flags.end(), 1u) != flags.end())
            {
                throw DeviceError("uniform sampling ran out of spare stream words (more rejections than expected)");
            }
            d_c0.copy_to(sum_c0, total);
            d_c1.copy_to(sum_c1, total);
            return SumProblem{};
        }
    } // namespace cuda
} // namespace fhto
