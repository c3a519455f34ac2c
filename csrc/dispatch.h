#pragma once

// How the engine's stages pick a code path: each chooses once, at its first use, from the CPU's
// features, and an environment variable (FHTO_NTT, FHTO_FFT, FHTO_CRC, ...; docs/BENCHMARKS.md
// lists them) can force a slower one, so that the tests run every path on any machine.

#include <cstdlib>
#include <string>

namespace fhto
{
    namespace detail
    {
        /** The path the environment variable asks for, or "" when it is unset. */
        inline std::string forced_path(const char *variable)
        {
            const char *value = std::getenv(variable);
            return value ? value : "";
        }
    } // namespace detail
} // namespace fhto
