<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * Gateway arguments of the stacks that authenticate callers: API keys in a
 * config file (plaintext, or over TLS), and mutual TLS where a client
 * certificate authenticates as a key.
 *
 * Keys (secrets are random for each run; the config holds their SHA-256):
 * - `full`: every target, namespace and RPC, no rate limit;
 * - `narrow`: target `default`, namespaces `/` and `/billing*`, RPCs Emit
 *   and BatchEmit only;
 * - `slow`: everything, but RATE events per second with a burst of BURST.
 * A target `down` (a closed port) exists so that scopes can refuse it.
 */
final class SecuredStack
{
    public const RATE = 1;
    public const BURST = 3;

    /** @var array<string, string> key id => secret */
    private static array $secrets = [];

    /** @var array<string, list<string>> */
    private static array $args = [];

    /**
     * The secret of a key of keysToml().
     */
    public static function secret(string $id): string
    {
        return self::$secrets[$id] ??= 'egk_' . bin2hex(random_bytes(32));
    }

    /**
     * API keys over plaintext HTTP/2.
     *
     * @return list<string>
     */
    public static function keys(): array
    {
        return self::$args['keys'] ??= ['--config', TempDir::write('keys.toml', self::keysToml())];
    }

    /**
     * TLS (server certificate only) and API keys.
     *
     * @return list<string>
     */
    public static function tls(): array
    {
        $pki = Pki::get();
        return self::$args['tls'] ??= ['--config', TempDir::write('tls.toml', <<<TOML
            [tls]
            cert = "$pki->serverCert"
            key = "$pki->serverKey"

            TOML . self::keysToml())];
    }

    /**
     * Mutual TLS: a client certificate is required, and the subject
     * `CN=billing` authenticates as the key `billing`, which may only Emit
     * and Broadcast in `/`.
     *
     * @return list<string>
     */
    public static function mtls(): array
    {
        $pki = Pki::get();
        return self::$args['mtls'] ??= ['--config', TempDir::write('mtls.toml', <<<TOML
            [tls]
            cert = "$pki->serverCert"
            key = "$pki->serverKey"
            client_ca = "$pki->ca"
            client_auth_required = true

            [[auth.keys]]
            id = "billing"
            client_subject = "CN=billing"
            namespaces = ["/"]
            rpcs = ["Emit", "Broadcast"]

            TOML)];
    }

    private static function keysToml(): string
    {
        $hash = static fn (string $id): string => hash('sha256', self::secret($id));
        $closed = stream_socket_server('tcp://127.0.0.1:0');
        $closedPort = (int) substr((string) strrchr((string) stream_socket_get_name($closed, false), ':'), 1);
        fclose($closed);
        $rate = self::RATE;
        $burst = self::BURST;
        return <<<TOML

            [[auth.keys]]
            id = "full"
            secret_sha256 = "{$hash('full')}"

            [[auth.keys]]
            id = "narrow"
            secret_sha256 = "{$hash('narrow')}"
            targets = ["default"]
            namespaces = ["/", "/billing*"]
            rpcs = ["Emit", "BatchEmit"]

            [[auth.keys]]
            id = "slow"
            secret_sha256 = "{$hash('slow')}"
            rate_per_second = $rate
            burst = $burst

            [[targets]]
            name = "down"
            redis_url = "redis://127.0.0.1:$closedPort"

            TOML;
    }
}
