#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace fhto
{
    namespace detail
    {
        /** The machine's hardware threads (at least 1). */
        inline int default_threads() noexcept
        {
            unsigned n = std::thread::hardware_concurrency();
            return n == 0 ? 1 : static_cast<int>(n);
        }

        /**
        Runs body(i) for every i in [0, count) on up to `threads` threads, handing out indices
        one at a time (each index is one ciphertext: coarse enough that the counter costs nothing).
        The first exception thrown by any call stops the hand-out and is rethrown here after all
        threads have joined. With one thread or one index, runs inline.
        */
        template <typename Body>
        void parallel_for(std::size_t count, int threads, Body &&body)
        {
            std::size_t workers = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(threads, 1)));
            if (workers <= 1)
            {
                for (std::size_t i = 0; i < count; i++)
                {
                    body(i);
                }
                return;
            }
            std::atomic<std::size_t> next{ 0 };
            std::atomic<bool> failed{ false };
            std::exception_ptr error;
            std::mutex error_mutex;
            auto run = [&]() {
                try
                {
                    for (std::size_t i = next++; i < count && !failed.load(std::memory_order_relaxed); i = next++)
                    {
                        body(i);
                    }
                }
                catch (...)
                {
                    std::lock_guard<std::mutex> lock(error_mutex);
                    if (!error)
                    {
                        error = std::current_exception();
                    }
                    failed = true;
                }
            };
            std::vector<std::thread> pool;
            try
            {
                pool.reserve(workers - 1);
                for (std::size_t t = 1; t < workers; t++)
                {
                    pool.emplace_back(run);
                }
            }
            catch (const std::system_error &)
            {
                // Could not start more threads: the ones running and this one finish the work.
            }
            run();
            for (auto &th : pool)
            {
                th.join();
            }
            if (error)
            {
                std::rethrow_exception(error);
            }
        }
    } // namespace detail
} // namespace fhto
