// Decryption and decoding of a batch on the GPU, chunk by chunk: the records checked (records.cuh),
// c0 (and c1, or the expanded seed) read, m = c0 + c1 s, the inverse NTT, each coefficient
// composed and turned into SEAL's double, SEAL's forward FFT stage by stage, and the slots
// written as values.

#include <algorithm>
#include <vector>
#include "cuda/api.h"
#include "cuda/decode.cuh"
#include "cuda/device.cuh"
#include "cuda/launch.cuh"
#include "cuda/records.cuh"
#include "cuda/uniform.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            __global__ void unpack_kernel(
                const std::uint8_t *records, std::uint64_t cts, int log_n, std::uint64_t limbs, int polys, RecordLayout layout,
                const UniformPrime *primes, std::uint64_t *c0, std::uint64_t *c1, unsigned *flags)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, groups = n / 8, t = index();
                if (t >= cts * polys * limbs * groups)
                {
                    return;
                }
                const std::uint64_t ct = t / (polys * limbs * groups), p = (t / (limbs * groups)) % polys;
                const std::uint64_t l = (t / groups) % limbs, g = t % groups;
                std::uint64_t *dst = (p == 0 ? c0 : c1) + (ct * limbs + l) * n + 8 * g;
                read_group(layout, n, static_cast<int>(l), g, records + ct * layout.record_bytes, dst, static_cast<int>(p));
                bool bad = false;
                for (int i = 0; i < 8; i++)
                {
                    bad |= dst[i] >= primes[l].q;
                }
                if (bad)
                {
                    atomicOr(flags + ct, kCoefficient);
                }
            }

            __global__ void decrypt_kernel(
                std::uint64_t *c0, const std::uint64_t *c1, const std::uint64_t *secret, const std::uint64_t *secret_quots,
                std::uint64_t cts, int log_n, std::uint64_t limbs, const UniformPrime *primes)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, t = index();
                if (t < cts * limbs * n)
                {
                    const std::uint64_t l = (t / n) % limbs, key = l * n + t % n;
                    const std::uint64_t q = primes[l].q; // a flagged record (a word not below q) is discarded
                    c0[t] = decrypt_coefficient(c0[t] < q ? c0[t] : 0, c1[t] < q ? c1[t] : 0, secret[key], secret_quots[key], q);
                }
            }

            __global__ void decode_kernel(const std::uint64_t *m, std::uint64_t cts, DecodeTables tables, Complex *work)
            {
                const std::uint64_t n = std::uint64_t(1) << tables.log_n, t = index();
                if (t < cts * n)
                {
                    const std::uint64_t ct = t / n, i = t % n;
                    work[t] = Complex{ decode_coefficient(m + ct * tables.limbs * n + i, n, tables), 0.0 };
                }
            }

            __global__ void fft_forward_kernel(Complex *work, std::uint64_t cts, int log_n, std::uint64_t m, const Complex *roots)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, half = n / 2, t = index();
                if (t < cts * half)
                {
                    const std::uint64_t gap = half / m, b = t % half, i = b / gap, j = b % gap;
                    Complex *x = work + (t / half) * n + 2 * gap * i + j;
                    fft_forward_butterfly(x[0], x[gap], roots[m + i]);
                }
            }

            __global__ void slots_kernel(
                const Complex *work, std::uint64_t cts, int log_n, const std::uint64_t *index_map, std::uint64_t first_value,
                std::uint64_t value_count, double *out)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, slots = n / 2, t = index();
                if (t >= cts * slots)
                {
                    return;
                }
                const std::uint64_t ct = t / slots, j = t % slots;
                const Complex v = work[ct * n + index_map[j]];
                const std::uint64_t at = ct * n + 2 * j; // relative to the chunk's first value
                if (first_value + at < value_count)
                {
                    out[at] = v.re;
                }
                if (first_value + at + 1 < value_count)
                {
                    out[at + 1] = v.im;
                }
            }
        } // namespace

        SumProblem decrypt_device(
            const DecryptPlan &plan, const SumInput &input, std::uint64_t ciphertexts, double *out, std::uint64_t value_count,
            int device)
        {
            if (device_count() == 0)
            {
                throw DeviceError("no usable CUDA device");
            }
            const DeviceScope scope(device);
            const std::size_t n = plan.n(), limbs = plan.limbs, record_bytes = plan.record_bytes;
            const std::size_t words = uniform_stream_words(limbs, n), pieces = crc_pieces(record_bytes);
            const std::size_t chunk = std::min<std::size_t>(ciphertexts, 1024);
            const int polys = plan.seeded ? 1 : 2;
            const std::vector<UniformPrime> &primes = plan.primes;
            const std::vector<std::uint64_t> &q = plan.moduli;
            const RecordCrc crc = record_crc(record_bytes);
            std::vector<std::uint8_t> fixed(plan.prefix);
            fixed.insert(fixed.end(), plan.tail.begin(), plan.tail.end());
            const RecordLayout layout = plan.layout();

            const DeviceArray<UniformPrime> d_primes(primes.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_q(q.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint32_t> d_table(crc.table, 256, "allocation of the tables");
            const DeviceArray<std::uint8_t> d_fixed(fixed.data(), fixed.size(), "allocation of the tables");
            const DeviceArray<std::uint64_t> d_secret(plan.secret.data(), limbs * n, "allocation of the key");
            const DeviceArray<std::uint64_t> d_secret_quots(plan.secret_quots.data(), limbs * n, "allocation of the key");
            const DeviceArray<std::uint64_t> d_inv_roots(plan.inv_roots.data(), limbs * n, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_inv_quots(plan.inv_quots.data(), limbs * n, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_q_hat(plan.q_hat.data(), limbs * limbs, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_q_hat_inv(plan.q_hat_inv.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_q_hat_inv_quot(plan.q_hat_inv_quot.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_modulus(plan.modulus.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_half(plan.half.data(), limbs, "allocation of the tables");
            const DeviceArray<Complex> d_roots(reinterpret_cast<const Complex *>(plan.roots.data()), n, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_map(plan.index_map.data(), n, "allocation of the tables");
            DecodeTables tables;
            tables.log_n = plan.log_n;
            tables.limbs = static_cast<int>(limbs);
            tables.primes = d_q.get();
            tables.q_hat = d_q_hat.get();
            tables.q_hat_inv = d_q_hat_inv.get();
            tables.q_hat_inv_quot = d_q_hat_inv_quot.get();
            tables.modulus = d_modulus.get();
            tables.half = d_half.get();
            tables.roots = d_roots.get();
            tables.index_map = d_map.get();
            tables.inv_scale = plan.inv_scale;

            DeviceArray<unsigned> d_flags(ciphertexts, "allocation of the flags"), d_failed(ciphertexts, "allocation of the flags");
            check(cudaMemset(d_flags.get(), 0, ciphertexts * sizeof(unsigned)), "clearing the flags");
            check(cudaMemset(d_failed.get(), 0, ciphertexts * sizeof(unsigned)), "clearing the flags");
            DeviceArray<std::uint8_t> d_records(chunk * record_bytes, "allocation of the records"), d_checks(4 * chunk, "allocation of the checks");
            DeviceArray<std::uint64_t> d_c0(chunk * limbs * n, "allocation of c0"), d_c1(chunk * limbs * n, "allocation of c1");
            DeviceArray<std::uint64_t> d_seeds(8 * chunk, "allocation of the seeds");
            DeviceArray<std::uint64_t> d_stream(plan.seeded ? chunk * words : 1, "allocation of the streams");
            DeviceArray<std::uint64_t> d_scratch(plan.seeded ? blake2xb_scratch_words(chunk, words) : 1, "allocation of the Blake2xb roots");
            DeviceArray<std::uint32_t> d_registers(chunk * pieces, "allocation of the checksums");
            DeviceArray<Complex> d_work(chunk * n, "allocation of the FFT buffer");
            DeviceArray<double> d_out(chunk * n, "allocation of the values");
            const unsigned threads = 256;
            for (std::size_t first = 0; first < ciphertexts; first += chunk)
            {
                const std::size_t cts = std::min<std::size_t>(chunk, ciphertexts - first);
                unsigned *f = d_flags.get() + first;
                check(cudaMemcpy(d_records.get(), input.records + first * record_bytes, cts * record_bytes, cudaMemcpyHostToDevice), "copy to the device");
                check(cudaMemcpy(d_checks.get(), input.checks + 4 * first, 4 * cts, cudaMemcpyHostToDevice), "copy to the device");
                crc_piece_kernel<<<blocks_for(cts * pieces, threads), threads>>>(d_table.get(), d_records.get(), record_bytes, cts, d_registers.get());
                crc_compare_kernel<<<blocks_for(cts, threads), threads>>>(
                    d_table.get(), d_registers.get(), pieces, first, cts, input.header_checksum, crc.x_piece, crc.x_last, d_checks.get(), f);
                layout_kernel<<<blocks_for(cts * fixed.size(), threads), threads>>>(
                    d_records.get(), record_bytes, cts, d_fixed.get(), plan.prefix.size(), plan.tail.size(), plan.tail_offset, f);
                unpack_kernel<<<blocks_for(cts * polys * limbs * n / 8, threads), threads>>>(
                    d_records.get(), cts, plan.log_n, limbs, polys, layout, d_primes.get(), d_c0.get(), d_c1.get(), f);
                check(cudaGetLastError(), "record launch");
                if (plan.seeded)
                {
                    seed_gather_kernel<<<blocks_for(cts, threads), threads>>>(d_records.get(), cts, layout, d_seeds.get());
                    check(cudaGetLastError(), "seed launch");
                    launch_blake2xb(d_seeds.get(), 8, cts, words, d_scratch.get(), d_stream.get(), nullptr);
                    launch_uniform(d_stream.get(), words, cts, n, limbs, d_primes.get(), d_c1.get(), d_failed.get() + first, nullptr);
                }
                decrypt_kernel<<<blocks_for(cts * limbs * n, threads), threads>>>(
                    d_c0.get(), d_c1.get(), d_secret.get(), d_secret_quots.get(), cts, plan.log_n, limbs, d_primes.get());
                check(cudaGetLastError(), "decryption launch");
                for (std::size_t l = 0; l < limbs; l++)
                {
                    launch_ntt_inverse(
                        d_c0.get() + l * n, cts, limbs * n, plan.log_n, q[l], d_inv_roots.get() + l * n, d_inv_quots.get() + l * n,
                        plan.inv_n[l], plan.inv_n_quot[l], plan.scaled_w[l], plan.scaled_w_quot[l], nullptr);
                }
                decode_kernel<<<blocks_for(cts * n, threads), threads>>>(d_c0.get(), cts, tables, d_work.get());
                for (std::uint64_t m = 1; m < n; m <<= 1)
                {
                    fft_forward_kernel<<<blocks_for(cts * n / 2, threads), threads>>>(d_work.get(), cts, plan.log_n, m, d_roots.get());
                }
                slots_kernel<<<blocks_for(cts * n / 2, threads), threads>>>(
                    d_work.get(), cts, plan.log_n, d_map.get(), first * n, value_count, d_out.get());
                check(cudaGetLastError(), "decoding launch");
                const std::uint64_t begin = first * n, end = std::min<std::uint64_t>(value_count, (first + cts) * n);
                check(cudaMemcpy(out + begin, d_out.get(), (end - begin) * sizeof(double), cudaMemcpyDeviceToHost), "copy to the host");
            }
            std::vector<unsigned> flags(ciphertexts);
            d_flags.copy_to(flags.data(), ciphertexts);
            const SumProblem problem = first_problem(flags.data(), ciphertexts, 0);
            if (problem.kind != SumProblem::none)
            {
                return problem;
            }
            d_failed.copy_to(flags.data(), ciphertexts);
            if (std::find(flags.begin(), flags.end(), 1u) != flags.end())
            {
                throw DeviceError("uniform sampling ran out of spare stream words (more rejections than expected)");
            }
            return SumProblem{};
        }
    } // namespace cuda
} // namespace fhto
