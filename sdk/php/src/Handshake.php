<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * The connection details a server kept for a socket. It never holds `auth`,
 * nor the `cookie` and `authorization` headers.
 */
final class Handshake
{
    /**
     * @param array<string, string> $headers by lower-case name; repeated
     *        headers joined with ", "
     * @param string $time the server's date string of the connection
     * @param string $address the client's remote address
     * @param bool $xdomain whether the connection is cross-domain
     * @param bool $secure whether the connection is over TLS
     * @param int $issued when the connection was made, in ms since the Unix epoch
     * @param string $url the request URL of the connection
     * @param array<string, string> $query the query parameters, by name
     */
    public function __construct(
        public readonly array $headers = [],
        public readonly string $time = '',
        public readonly string $address = '',
        public readonly bool $xdomain = false,
        public readonly bool $secure = false,
        public readonly int $issued = 0,
        public readonly string $url = '',
        public readonly array $query = [],
    ) {
    }
}
