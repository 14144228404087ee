/**
 * The part of sodium-native (libsodium bindings; no type declarations ship with it) that ChatNode calls. Each
 * function writes into the buffers it is given and throws only on wrong buffer sizes, which the callers rule out.
 */
declare module "sodium-native" {
  const sodium: {
    crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
    crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
    crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
    crypto_scalarmult_base(publicKey: Uint8Array, secretKey: Uint8Array): void;
    /** Throws when the result is all zeros (a low-order peer key). */
    crypto_scalarmult(shared: Uint8Array, secretKey: Uint8Array, publicKey: Uint8Array): void;
    crypto_sign_SECRETKEYBYTES: number;
    /** Writes ciphertext ‖ tag (message length + 16) into `out`; returns the bytes written. */
    crypto_aead_chacha20poly1305_ietf_encrypt(
      out: Uint8Array,
      message: Uint8Array,
      ad: Uint8Array | null,
      nsec: null,
      nonce: Uint8Array,
      key: Uint8Array,
    ): number;
    /** Throws if the tag does not verify. */
    crypto_aead_chacha20poly1305_ietf_decrypt(
      out: Uint8Array,
      nsec: null,
      ciphertext: Uint8Array,
      ad: Uint8Array | null,
      nonce: Uint8Array,
      key: Uint8Array,
    ): number;
    /** SHA-256 of `input` into `out` (32 bytes). */
    crypto_hash_sha256(out: Uint8Array, input: Uint8Array): void;
    sodium_memzero(buffer: Uint8Array): void;
  };
  export default sodium;
}
