#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "pack.h"
#include "params.h"
#include "seal/seal.h"

namespace fhto
{
    /** 16 bytes that identify a parameter set together with a key set. */
    using Fingerprint = std::array<std::uint8_t, 16>;

    /** How the ciphertexts of a batch were made. */
    enum class Mode : std::uint8_t
    {
        symmetric = 1, ///< secret-key encryption, serialized in SEAL's seeded form (half the bytes)
        public_key = 2, ///< public-key encryption, full ciphertexts
        sum = 3 ///< a homomorphic sum of batches, full ciphertexts
    };

    /**
    The exact bytes SEAL writes around a seeded ciphertext of one context: everything before the
    coefficient words (header, parameters id, NTT flag, sizes, scale, correction factor, array
    header and count) and the header of the seed record after them.
    */
    struct SeededTemplate
    {
        std::vector<std::uint8_t> prefix;
        std::size_t seed_record_offset = 0;
        std::vector<std::uint8_t> seed_record_header;
        std::size_t total_bytes = 0;
    };

    class Plans;

    /** "symmetric", "public_key" or "sum". */
    const char *mode_name(Mode mode) noexcept;

    /**
    Parameters, keys and SEAL machinery for one key set. A context either holds the secret key
    (a key holder's) or not (the server's public context). Copies share state and are cheap; all
    methods are const and safe to call from many threads at once.
    */
    class Context
    {
    public:
        /**
        Generates a fresh key set (secret and public key) for the parameters.

        Without a seed the keys come from the operating system's randomness. With one, they
        are a deterministic function of (params, seed): the k-th PRNG key generation asks for
        (the secret key's, then the public key's) gets derive_seed(SeedPurpose::keygen, seed, k).
        The returned context does not keep that generator: its later encryptions are random.
        A seed is for reproducible studies and tests only, never for production keys.
        @throws ParameterError if the parameters are invalid or insecure
        */
        static Context generate(const Params &params, std::optional<std::uint64_t> seed = std::nullopt);

        /**
        The public context of a key set whose public key was made outside SEAL's key generator (a
        multiparty collective key): parameters and public key, no secret key.
        @throws ParameterError if the parameters are invalid
        @throws FormatError if the key does not belong to the parameters (level, form, range)
        */
        static Context from_public_key(const Params &params, const seal::PublicKey &public_key);

        /**
        Loads a context written by to_bytes (with or without the secret key).
        @throws FormatError if the bytes are truncated, corrupted or not a context
        @throws ParameterError if the stored parameters are insecure
        */
        static Context from_bytes(const std::uint8_t *data, std::size_t size);

        /**
        Serializes the parameters, the scale and the public key, plus the secret key when
        include_secret is set.
        @throws SecretKeyRequiredError if include_secret is set on a public context
        */
        std::string to_bytes(bool include_secret) const;

        /** The same key set without the secret key: what the server gets. */
        Context public_only() const;

        bool has_secret_key() const noexcept;
        const Params &params() const noexcept;
        const seal::SEALContext &seal_context() const noexcept;
        const seal::CKKSEncoder &encoder() const noexcept;
        const seal::Encryptor &encryptor() const noexcept;
        const seal::Evaluator &evaluator() const noexcept;
        const seal::PublicKey &public_key() const noexcept;

        /**
        SEAL's Decryptor::decrypt is not const but is safe to call from several threads (it
        guards its cached key powers with a reader-writer lock and allocates from a global pool).
        @throws SecretKeyRequiredError on a public context
        */
        seal::Decryptor &decryptor() const;
        /** @throws SecretKeyRequiredError on a public context */
        const seal::SecretKey &secret_key() const;

        const Fingerprint &fingerprint() const noexcept;

        /** Real values carried by one ciphertext: two per complex slot, so N. */
        std::size_t values_per_ciphertext() const noexcept;

        /** The encoding scale 2^scale_bits. */
        double scale() const noexcept;

        /** log2 of the modulus the data live in (all primes but the special one). */
        double data_modulus_bits() const noexcept;

        /**
        The largest |weight * value| each of `parties` contributions may hold: every encoding
        fits SEAL's encoder and their sum still decrypts correctly (its coefficients stay inside
        (-q/2, q/2)). Encryption refuses anything larger with ValueRangeError.
        */
        double max_abs_value(std::uint32_t parties, Mode mode) const noexcept;

        /**
        Worst-case absolute error of any decrypted value of a sum of `parties` contributions made
        in `mode`, each of whose values has |weight * value| <= max_abs:

            parties * (N * (1 + e_max) / scale + rounding_error_factor() * max_abs)

        The first term is fresh encryption noise (e_max: 21 with the secret key, 21 * (2N + 1)
        with the public key) and the rounding of the encoding to integers; it does not depend on
        the values. The second is the floating-point error of encoding and decoding, which grows
        with them. A negative or NaN max_abs means max_abs_value(parties, mode): a bound that
        holds over the whole range.
        */
        double error_bound(std::uint32_t parties, Mode mode, double max_abs = -1.0) const noexcept;

        /**
        Worst-case floating-point error of one contribution's encoding and decoding, per unit of
        its largest |weight * value|: sqrt(2N) * (2f + 5u), with u = 2^-53 and f the 2-norm
        relative error bound of a size-N FFT in double precision.
        */
        double rounding_error_factor() const noexcept;

        /**
        Size of one serialized ciphertext in the given mode and packing (SEAL's serialization
        without compression, or its bit-packed form); 0 if this SEAL build cannot be packed.
        */
        std::size_t ciphertext_bytes(Mode mode, Packing packing = Packing::none) const noexcept;

        /** Byte template of this context's seeded ciphertexts, or nullptr if SEAL's layout is unexpected. */
        const SeededTemplate *seeded_template() const noexcept;

        /** Layout of the bit-packed form of a ciphertext in `mode`, or nullptr if unsupported. */
        const PackLayout *pack_layout(Mode mode) const noexcept;

        /** The engine's tables and record plans for this key set, built on first use (csrc/plans.h). */
        Plans &plans() const noexcept;

        /** SEAL's own serialization of the encryption parameters. */
        std::string seal_parameters_bytes() const;
        /** SEAL's own serialization of the public key. */
        std::string seal_public_key_bytes() const;
        /** SEAL's own serialization of the secret key. @throws SecretKeyRequiredError */
        std::string seal_secret_key_bytes() const;

        struct State;

    private:
        explicit Context(std::shared_ptr<const State> state) : s_(std::move(state))
        {}

        std::shared_ptr<const State> s_;
    };
} // namespace fhto
