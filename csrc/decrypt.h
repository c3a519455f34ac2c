#pragma once

#include <cstddef>
#include <cstdint>
#include "context.h"
#include "wire.h"

namespace fhto
{
    /**
    Decrypts and decodes a whole batch (a fresh encryption or a sum) into out, which must hold
    exactly batch.header.value_count doubles. Each worker checks, loads, decrypts and decodes
    its ciphertexts with its own SEAL memory pool and writes its values in place.
    @throws SecretKeyRequiredError on a public context
    @throws FormatError if a ciphertext is corrupted
    @throws ParameterError if out has the wrong size
    */
    void decrypt_into(const Context &context, const BatchView &batch, double *out, std::size_t out_count, int threads);
} // namespace fhto
