// Batch encryption on the GPU: the steps of encrypt.cuh, each one launch over a chunk of
// ciphertexts; chunks alternate between two streams, each chunk's records copied back to pinned
// memory while the next chunk computes, then into the caller's buffer by host threads.

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "cuda/api.h"
#include "cuda/device.cuh"
#include "cuda/encrypt.cuh"
#include "cuda/launch.cuh"
#include "cuda/records.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            // ---- the range check -----------------------------------------------------------
            struct ScanPartial
            {
                std::uint64_t first_bad;
                double max_abs;
                std::uint64_t max_index;
            };

            constexpr unsigned kScanThreads = 256;
            constexpr std::uint64_t kScanTile = kScanThreads * 16;

            /** Better: a smaller first bad index, else a larger maximum, else its smaller index. */
            __device__ void merge(ScanPartial &a, const ScanPartial &b)
            {
                a.first_bad = min(a.first_bad, b.first_bad);
                if (b.max_abs > a.max_abs || (b.max_abs == a.max_abs && b.max_index < a.max_index))
                {
                    a.max_abs = b.max_abs;
                    a.max_index = b.max_index;
                }
            }

            template <typename T>
            __global__ void scan_kernel(const T *values, std::uint64_t count, ScanPartial *partials)
            {
                __shared__ ScanPartial shared[kScanThreads];
                ScanPartial mine{ ~0ULL, 0.0, ~0ULL };
                const std::uint64_t base = blockIdx.x * kScanTile;
                for (std::uint64_t k = threadIdx.x; k < kScanTile; k += kScanThreads)
                {
                    const std::uint64_t i = base + k;
                    if (i >= count)
                    {
                        break;
                    }
                    const double a = fabs(static_cast<double>(values[i]));
                    if (!(a <= DBL_MAX))
                    {
                        mine.first_bad = min(mine.first_bad, i);
                    }
                    else if (a > mine.max_abs || mine.max_index == ~0ULL)
                    {
                        mine.max_abs = a;
                        mine.max_index = i;
                    }
                }
                shared[threadIdx.x] = mine;
                __syncthreads();
                for (unsigned s = kScanThreads / 2; s > 0; s >>= 1)
                {
                    if (threadIdx.x < s)
                    {
                        merge(shared[threadIdx.x], shared[threadIdx.x + s]);
                    }
                    __syncthreads();
                }
                if (threadIdx.x == 0)
                {
                    partials[blockIdx.x] = shared[0];
                }
            }

            // ---- encryption ------------------------------------------------------------------
            template <typename T>
            __global__ void scatter_kernel(
                const T *values, std::uint64_t count, std::uint64_t first_ct, std::uint64_t cts, double weight,
                EncodeTables tables, Complex *work)
            {
                const std::uint64_t n = std::uint64_t(1) << tables.log_n, slots = n / 2, t = index();
                if (t < cts * slots)
                {
                    const std::uint64_t ct = t / slots;
                    scatter_slot(values, count, first_ct + ct, t % slots, weight, tables, work + ct * n);
                }
            }

            __global__ void fft_stage_kernel(Complex *work, std::uint64_t cts, int log_n, std::uint64_t m, const Complex *roots)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, half = n / 2, t = index();
                if (t >= cts * half)
                {
                    return;
                }
                const std::uint64_t gap = half / m, b = t % half, i = b / gap, j = b % gap;
                Complex *x = work + (t / half) * n + 2 * gap * i + j;
                fft_inverse_butterfly(x[0], x[gap], roots[fft_inverse_root_offset(n, m) + i]);
            }

            __global__ void fft_last_kernel(Complex *work, std::uint64_t cts, int log_n, Complex scaled_r, double fix)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, half = n / 2, t = index();
                if (t < cts * half)
                {
                    Complex *x = work + (t / half) * n + t % half;
                    fft_inverse_last(x[0], x[half], scaled_r, fix);
                }
            }

            /** Rounds the encoded coefficients and draws the noise: m and e, every limb. */
            __global__ void residue_kernel(
                const Complex *work, const std::uint64_t *boot, std::uint64_t boot_words, std::uint64_t cts, int log_n,
                std::uint64_t limbs, const UniformPrime *primes, std::uint64_t *m, std::uint64_t *e)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, t = index();
                if (t >= cts * n)
                {
                    return;
                }
                const std::uint64_t ct = t / n, i = t % n;
                const double re = work[t].re;
                const auto *noise_bytes = reinterpret_cast<const std::uint8_t *>(boot + ct * boot_words + 8);
                std::uint8_t x[6];
                for (int b = 0; b < 6; b++)
                {
                    x[b] = noise_bytes[6 * i + b];
                }
                const int noise = cbd_noise(x);
                for (std::uint64_t l = 0; l < limbs; l++)
                {
                    const std::uint64_t at = (ct * limbs + l) * n + i;
                    m[at] = coefficient_residue(re, primes[l]);
                    e[at] = noise_residue(noise, primes[l].q);
                }
            }

            __global__ void c0_kernel(
                std::uint64_t *m, const std::uint64_t *a, const std::uint64_t *e, const std::uint64_t *secret,
                const std::uint64_t *secret_quots, std::uint64_t cts, int log_n, std::uint64_t limbs, const UniformPrime *primes)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, t = index();
                if (t >= cts * limbs * n)
                {
                    return;
                }
                const std::uint64_t l = (t / n) % limbs, key = l * n + t % n;
                m[t] = c0_coefficient(m[t], a[t], secret[key], secret_quots[key], e[t], primes[l].q);
            }

            __global__ void template_kernel(const std::uint8_t *tmpl, std::uint64_t record_bytes, std::uint64_t cts, std::uint8_t *records)
            {
                const std::uint64_t t = index();
                if (t < cts * record_bytes)
                {
                    records[t] = tmpl[t % record_bytes];
                }
            }

            __global__ void group_kernel(
                const std::uint64_t *c0, std::uint64_t cts, int log_n, std::uint64_t limbs, RecordLayout layout,
                std::uint8_t *records)
            {
                const std::uint64_t n = std::uint64_t(1) << log_n, groups = n / 8, t = index();
                if (t >= cts * limbs * groups)
                {
                    return;
                }
                const std::uint64_t ct = t / (limbs * groups), l = (t / groups) % limbs, g = t % groups;
                write_group(layout, n, static_cast<int>(l), g, c0 + (ct * limbs + l) * n, records + ct * layout.record_bytes);
            }

            __global__ void seed_kernel(const std::uint64_t *boot, std::uint64_t boot_words, std::uint64_t cts, RecordLayout layout, std::uint8_t *records)
            {
                const std::uint64_t ct = index();
                if (ct < cts)
                {
                    write_seed(layout, boot + ct * boot_words, records + ct * layout.record_bytes);
                }
            }

            __global__ void crc_combine_kernel(
                const std::uint32_t *table, const std::uint32_t *registers, std::uint64_t pieces, std::uint64_t first_ct,
                std::uint64_t cts, std::uint32_t header_checksum, std::uint32_t x_piece, std::uint32_t x_last,
                std::uint32_t *checks)
            {
                const std::uint64_t ct = index();
                if (ct < cts)
                {
                    checks[ct] = crc32c_combine(
                        position_start(table, header_checksum, first_ct + ct), registers + ct * pieces, pieces, x_piece, x_last);
                }
            }

            // ---- resources -------------------------------------------------------------------
            class Stream
            {
            public:
                Stream()
                {
                    check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "stream creation");
                }
                Stream(const Stream &) = delete;
                ~Stream()
                {
                    cudaStreamSynchronize(s_);
                    cudaStreamDestroy(s_);
                }
                cudaStream_t get() const noexcept
                {
                    return s_;
                }

            private:
                cudaStream_t s_ = nullptr;
            };

            /**
            Pinned host memory for one call. Pinning is slow (milliseconds per hundred MB), so the
            process keeps its largest staging buffer for the next call; a call that finds it busy
            (another thread encrypting) pins its own.
            */
            class Pinned
            {
            public:
                explicit Pinned(std::size_t bytes)
                {
                    if (cache_lock().try_lock())
                    {
                        locked_ = true;
                        if (cache_size() < bytes)
                        {
                            cudaFreeHost(cache_ptr());
                            cache_ptr() = nullptr;
                            cache_size() = 0;
                            try
                            {
                                check(cudaMallocHost(&cache_ptr(), bytes), "allocation of pinned host memory");
                            }
                            catch (...)
                            {
                                cache_ptr() = nullptr;
                                cache_lock().unlock();
                                throw;
                            }
                            cache_size() = bytes;
                        }
                        p_ = cache_ptr();
                        return;
                    }
                    check(cudaMallocHost(&p_, bytes), "allocation of pinned host memory");
                }
                Pinned(const Pinned &) = delete;
                ~Pinned()
                {
                    if (locked_)
                    {
                        cache_lock().unlock();
                    }
                    else
                    {
                        cudaFreeHost(p_);
                    }
                }
                std::uint8_t *get() const noexcept
                {
                    return static_cast<std::uint8_t *>(p_);
                }

            private:
                static std::mutex &cache_lock()
                {
                    static std::mutex m;
                    return m;
                }
                static void *&cache_ptr()
                {
                    static void *p = nullptr;
                    return p;
                }
                static std::size_t &cache_size()
                {
                    static std::size_t size = 0;
                    return size;
                }

                void *p_ = nullptr;
                bool locked_ = false;
            };

            /** Copies n bytes with several host threads (the last copy out of pinned memory). */
            void parallel_copy(std::uint8_t *dst, const std::uint8_t *src, std::size_t n)
            {
                const unsigned threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
                if (threads == 1 || n < (std::size_t(1) << 22))
                {
                    std::memcpy(dst, src, n);
                    return;
                }
                std::vector<std::thread> pool;
                const std::size_t step = (n + threads - 1) / threads;
                for (unsigned t = 0; t < threads; t++)
                {
                    const std::size_t begin = std::min(n, t * step), end = std::min(n, begin + step);
                    pool.emplace_back([=] { std::memcpy(dst + begin, src + begin, end - begin); });
                }
                for (auto &th : pool)
                {
                    th.join();
                }
            }

            /** Every device buffer one chunk needs. */
            struct ChunkBuffers
            {
                DeviceArray<std::uint64_t> boot, uniform, scratch, a, m, e;
                DeviceArray<Complex> work;
                DeviceArray<std::uint8_t> records;
                DeviceArray<std::uint32_t> registers, checks;
                ChunkBuffers(std::size_t cts, std::size_t boot_words, std::size_t uniform_words, std::size_t scratch_words,
                             std::size_t n, std::size_t limbs, std::size_t record_bytes)
                    : boot(cts * boot_words, "allocation of the bootstrap streams"),
                      uniform(cts * uniform_words, "allocation of the uniform streams"),
                      scratch(scratch_words, "allocation of the Blake2xb roots"), a(cts * limbs * n, "allocation of a"),
                      m(cts * limbs * n, "allocation of the plaintexts"), e(cts * limbs * n, "allocation of the noise"),
                      work(cts * n, "allocation of the FFT buffer"), records(cts * record_bytes, "allocation of the records"),
                      registers(cts * crc_pieces(record_bytes), "allocation of the checksums"),
                      checks(cts, "allocation of the checksums")
                {}
            };
        } // namespace

        int pointer_device(const void *pointer)
        {
            cudaPointerAttributes attributes{};
            const cudaError_t status = cudaPointerGetAttributes(&attributes, pointer);
            if (status != cudaSuccess)
            {
                cudaGetLastError();
                throw DeviceError(std::string("CUDA cannot tell where the values live: ") + cudaGetErrorString(status));
            }
            if (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged)
            {
                return attributes.device;
            }
            return -1;
        }

        ScanResult scan_device(const void *values, int dtype_bytes, std::uint64_t count, int device)
        {
            if (device_count() == 0)
            {
                throw DeviceError("no usable CUDA device");
            }
            const DeviceScope scope(device);
            const std::size_t blocks = (count + kScanTile - 1) / kScanTile;
            const DeviceArray<ScanPartial> partials(blocks, "allocation of the range check");
            check(cudaDeviceSynchronize(), "waiting for the values' producer");
            if (dtype_bytes == 4)
            {
                scan_kernel<<<static_cast<unsigned>(blocks), kScanThreads>>>(static_cast<const float *>(values), count, partials.get());
            }
            else
            {
                scan_kernel<<<static_cast<unsigned>(blocks), kScanThreads>>>(static_cast<const double *>(values), count, partials.get());
            }
            check(cudaGetLastError(), "range check launch");
            std::vector<ScanPartial> host(blocks);
            partials.copy_to(host.data(), blocks);
            ScanResult r;
            bool any = false;
            for (const auto &p : host) // blocks in index order: a strictly larger maximum wins
            {
                r.first_bad = std::min(r.first_bad, p.first_bad);
                if (p.max_index != ~0ULL && (!any || p.max_abs > r.max_abs))
                {
                    r.max_abs = p.max_abs;
                    r.max_index = p.max_index;
                    any = true;
                }
            }
            if (r.first_bad != ~0ULL)
            {
                if (dtype_bytes == 4)
                {
                    float v = 0;
                    check(cudaMemcpy(&v, static_cast<const float *>(values) + r.first_bad, 4, cudaMemcpyDeviceToHost), "copy to the host");
                    r.bad_value = v;
                }
                else
                {
                    check(cudaMemcpy(&r.bad_value, static_cast<const double *>(values) + r.first_bad, 8, cudaMemcpyDeviceToHost), "copy to the host");
                }
            }
            return r;
        }

        void encrypt_device(
            const EncryptPlan &plan, const void *values, bool values_on_device, int dtype_bytes, std::uint64_t count,
            double weight, const std::uint64_t *bootstrap_seeds, std::uint64_t ciphertexts, std::uint32_t header_checksum,
            std::uint8_t *records, std::uint32_t *checks, int device)
        {
            if (device_count() == 0)
            {
                throw DeviceError("no usable CUDA device");
            }
            if (plan.log_n < 5 || (dtype_bytes != 4 && dtype_bytes != 8))
            {
                throw ParameterError("the CUDA path needs N >= 32 and float32 or float64 values");
            }
            const DeviceScope scope(device);
            const std::size_t n = plan.n(), limbs = plan.limbs, record_bytes = plan.record_template.size();
            const std::size_t boot_words = plan.bootstrap_words(), uniform_words = uniform_stream_words(limbs, n);
            const std::size_t pieces = crc_pieces(record_bytes);

            // Size the chunks to the free memory (two in flight), at most 1024 ciphertexts each.
            const std::size_t per_ct = 8 * (boot_words + uniform_words + 3 * limbs * n + 8 * ((uniform_words + 511) / 512)) +
                                       16 * n + record_bytes + 4 * pieces + 4;
            std::size_t free_bytes = 0, total_bytes = 0;
            check(cudaMemGetInfo(&free_bytes, &total_bytes), "memory query");
            const std::size_t input_bytes = values_on_device ? 0 : count * static_cast<std::size_t>(dtype_bytes);
            const std::size_t usable = free_bytes > input_bytes + (std::size_t(256) << 20) ? free_bytes - input_bytes - (std::size_t(256) << 20) : 0;
            const std::size_t chunk = std::min<std::size_t>({ ciphertexts, 1024, usable / (2 * per_ct) });
            if (chunk == 0)
            {
                throw DeviceError(
                    "out of device memory: a chunk of ciphertexts needs " + std::to_string((2 * per_ct + input_bytes) >> 20) +
                    " MiB and " + std::to_string(free_bytes >> 20) + " MiB are free");
            }

            // Tables and inputs, uploaded once.
            const std::vector<UniformPrime> &primes = plan.primes;
            const RecordCrc crc = record_crc(record_bytes);
            const DeviceArray<UniformPrime> d_primes(primes.data(), limbs, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_roots(plan.ntt_roots.data(), limbs * n, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_quots(plan.ntt_quots.data(), limbs * n, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_secret(plan.secret.data(), limbs * n, "allocation of the key");
            const DeviceArray<std::uint64_t> d_secret_quots(plan.secret_quots.data(), limbs * n, "allocation of the key");
            const DeviceArray<std::uint64_t> d_map(plan.index_map.data(), n, "allocation of the tables");
            const DeviceArray<Complex> d_inv_roots(reinterpret_cast<const Complex *>(plan.inv_roots.data()), n, "allocation of the tables");
            const DeviceArray<std::uint8_t> d_template(plan.record_template.data(), record_bytes, "allocation of the template");
            const DeviceArray<std::uint32_t> d_table(crc.table, 256, "allocation of the tables");
            const DeviceArray<std::uint64_t> d_seeds(bootstrap_seeds, 8 * ciphertexts, "allocation of the seeds");
            DeviceArray<unsigned> d_failed(ciphertexts, "allocation of the flags");
            check(cudaMemset(d_failed.get(), 0, ciphertexts * sizeof(unsigned)), "clearing the flags");
            const void *d_values = values;
            std::unique_ptr<DeviceArray<std::uint8_t>> uploaded;
            if (!values_on_device)
            {
                uploaded.reset(new DeviceArray<std::uint8_t>(
                    static_cast<const std::uint8_t *>(values), input_bytes, "allocation of the values"));
                d_values = uploaded->get();
            }
            // The uploads and the memset above ran on the legacy stream, which the non-blocking
            // streams below do not wait for; a device-side producer of the values must be done too.
            check(cudaDeviceSynchronize(), "waiting for the uploads and the values' producer");

            EncodeTables tables;
            tables.log_n = plan.log_n;
            tables.index_map = d_map.get();
            tables.inv_roots = d_inv_roots.get();
            tables.fix = plan.fix;
            const Complex scaled_r = cscale(
                Complex{ plan.inv_roots[2 * (n - 1)], plan.inv_roots[2 * (n - 1) + 1] }, plan.fix);
            const RecordLayout layout = plan.layout();

            const std::size_t scratch = blake2xb_scratch_words(chunk, std::max(boot_words, uniform_words));
            ChunkBuffers b0(chunk, boot_words, uniform_words, scratch, n, limbs, record_bytes);
            ChunkBuffers b1(chunk, boot_words, uniform_words, scratch, n, limbs, record_bytes);
            ChunkBuffers *buffers[2] = { &b0, &b1 };
            Pinned staging(2 * chunk * (record_bytes + 4)); // declared first: released after the streams sync
            Stream s0, s1;
            const Stream *streams[2] = { &s0, &s1 };
            cudaEvent_t done[2];
            check(cudaEventCreateWithFlags(&done[0], cudaEventDisableTiming), "event creation");
            check(cudaEventCreateWithFlags(&done[1], cudaEventDisableTiming), "event creation");
            struct Events
            {
                cudaEvent_t *e;
                ~Events()
                {
                    cudaEventDestroy(e[0]);
                    cudaEventDestroy(e[1]);
                }
            } events{ done };

            const std::size_t chunks = (ciphertexts + chunk - 1) / chunk;
            const unsigned threads = 256;
            auto drain = [&](std::size_t c) {
                const int slot = static_cast<int>(c % 2);
                const std::size_t first = c * chunk, cts = std::min<std::size_t>(chunk, ciphertexts - first);
                check(cudaEventSynchronize(done[slot]), "encryption");
                const std::uint8_t *stage = staging.get() + slot * chunk * (record_bytes + 4);
                parallel_copy(records + first * record_bytes, stage, cts * record_bytes);
                std::memcpy(checks + first, stage + chunk * record_bytes, cts * 4);
            };
            for (std::size_t c = 0; c < chunks; c++)
            {
                const int slot = static_cast<int>(c % 2);
                const std::size_t first = c * chunk, cts = std::min<std::size_t>(chunk, ciphertexts - first);
                ChunkBuffers &bf = *buffers[slot];
                const cudaStream_t st = streams[slot]->get();
                if (c >= 2)
                {
                    drain(c - 2); // frees this slot's staging memory
                }
                launch_blake2xb(d_seeds.get() + 8 * first, 8, cts, boot_words, bf.scratch.get(), bf.boot.get(), st);
                launch_blake2xb(bf.boot.get(), boot_words, cts, uniform_words, bf.scratch.get(), bf.uniform.get(), st);
                launch_uniform(bf.uniform.get(), uniform_words, cts, n, limbs, d_primes.get(), bf.a.get(), d_failed.get() + first, st);
                if (dtype_bytes == 4)
                {
                    scatter_kernel<<<blocks_for(cts * n / 2, threads), threads, 0, st>>>(
                        static_cast<const float *>(d_values), count, first, cts, weight, tables, bf.work.get());
                }
                else
                {
                    scatter_kernel<<<blocks_for(cts * n / 2, threads), threads, 0, st>>>(
                        static_cast<const double *>(d_values), count, first, cts, weight, tables, bf.work.get());
                }
                check(cudaGetLastError(), "encoding launch");
                for (std::uint64_t m = n / 2; m > 1; m >>= 1)
                {
                    fft_stage_kernel<<<blocks_for(cts * n / 2, threads), threads, 0, st>>>(bf.work.get(), cts, plan.log_n, m, d_inv_roots.get());
                }
                fft_last_kernel<<<blocks_for(cts * n / 2, threads), threads, 0, st>>>(bf.work.get(), cts, plan.log_n, scaled_r, plan.fix);
                check(cudaGetLastError(), "FFT launch");
                residue_kernel<<<blocks_for(cts * n, threads), threads, 0, st>>>(
                    bf.work.get(), bf.boot.get(), boot_words, cts, plan.log_n, limbs, d_primes.get(), bf.m.get(), bf.e.get());
                check(cudaGetLastError(), "rounding launch");
                for (std::size_t l = 0; l < limbs; l++)
                {
                    launch_ntt_forward(bf.m.get() + l * n, cts, limbs * n, plan.log_n, primes[l].q, d_roots.get() + l * n, d_quots.get() + l * n, st);
                    launch_ntt_forward(bf.e.get() + l * n, cts, limbs * n, plan.log_n, primes[l].q, d_roots.get() + l * n, d_quots.get() + l * n, st);
                }
                c0_kernel<<<blocks_for(cts * limbs * n, threads), threads, 0, st>>>(
                    bf.m.get(), bf.a.get(), bf.e.get(), d_secret.get(), d_secret_quots.get(), cts, plan.log_n, limbs, d_primes.get());
                template_kernel<<<blocks_for(cts * record_bytes, threads), threads, 0, st>>>(d_template.get(), record_bytes, cts, bf.records.get());
                group_kernel<<<blocks_for(cts * limbs * n / 8, threads), threads, 0, st>>>(bf.m.get(), cts, plan.log_n, limbs, layout, bf.records.get());
                seed_kernel<<<blocks_for(cts, threads), threads, 0, st>>>(bf.boot.get(), boot_words, cts, layout, bf.records.get());
                crc_piece_kernel<<<blocks_for(cts * pieces, threads), threads, 0, st>>>(d_table.get(), bf.records.get(), record_bytes, cts, bf.registers.get());
                crc_combine_kernel<<<blocks_for(cts, threads), threads, 0, st>>>(
                    d_table.get(), bf.registers.get(), pieces, first, cts, header_checksum, crc.x_piece, crc.x_last, bf.checks.get());
                check(cudaGetLastError(), "record launch");
                std::uint8_t *stage = staging.get() + slot * chunk * (record_bytes + 4);
                check(cudaMemcpyAsync(stage, bf.records.get(), cts * record_bytes, cudaMemcpyDeviceToHost, st), "copy to the host");
                check(cudaMemcpyAsync(stage + chunk * record_bytes, bf.checks.get(), cts * 4, cudaMemcpyDeviceToHost, st), "copy to the host");
                check(cudaEventRecord(done[slot], st), "event record");
            }
            for (std::size_t c = chunks >= 2 ? chunks - 2 : 0; c < chunks; c++)
            {
                drain(c);
            }
            std::vector<unsigned> failed(ciphertexts);
            d_failed.copy_to(failed.data(), ciphertexts);
            if (std::find(failed.begin(), failed.end(), 1u) != failed.end())
            {
                throw DeviceError("uniform sampling ran out of spare stream words (more rejections than expected)");
            }
        }
    } // namespace cuda
} // namespace fhto
