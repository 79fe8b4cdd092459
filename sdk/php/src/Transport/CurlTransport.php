<?php

declare(strict_types=1);

namespace Emitgate\Transport;

use Emitgate\Code;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InternalException;
use Emitgate\FieldViolation;
use Emitgate\Internal\Wire;
use Emitgate\Proto\Google\Rpc\BadRequest;
use Emitgate\Proto\Google\Rpc\RetryInfo;
use Emitgate\Proto\Google\Rpc\Status;

/**
 * Unary gRPC calls over HTTP/2 with ext-curl, without the grpc extension.
 *
 * Plaintext addresses use HTTP/2 with prior knowledge (h2c); `https://`
 * addresses use TLS with ALPN `h2`. Requests are one length-prefixed message
 * (`content-type: application/grpc`, `te: trailers`, `grpc-timeout`,
 * optionally `authorization: Bearer`). The status is read from the trailers,
 * or from the headers of a trailers-only answer: `grpc-status`,
 * `grpc-message` (percent-decoded) and `grpc-status-details-bin` (a
 * google.rpc.Status holding BadRequest / RetryInfo details). One curl handle
 * is kept, so consecutive calls reuse one connection (see
 * reusesConnections() for the exception).
 */
final class CurlTransport
{
    /** The gRPC default maximum message size, 4 MiB. */
    public const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

    private const USER_AGENT = 'emitgate-php/0.1.0 (curl)';
    private const BAD_REQUEST_URL = 'type.googleapis.com/google.rpc.BadRequest';
    private const RETRY_INFO_URL = 'type.googleapis.com/google.rpc.RetryInfo';
    private const ERROR_INFO_URL = 'type.googleapis.com/google.rpc.ErrorInfo';
    /** libcurl's CURLE_HTTP2_STREAM, which ext-curl does not define. */
    private const CURLE_HTTP2_STREAM = 92;

    private string $baseUrl;
    private bool $tls;
    private ?\CurlHandle $handle = null;
    private int $connections = 0;

    /**
     * @param string $address `host:port` or `http://host:port` for plaintext
     *        (h2c), `https://host:port` for TLS
     * @param string|null $apiKey sent as `authorization: Bearer <key>`
     * @param string|null $caFile PEM file of the CAs that sign the server's
     *        certificate (TLS; the system CAs when null)
     * @param string|null $certFile PEM client certificate, for mutual TLS
     * @param string|null $keyFile PEM private key of the client certificate
     * @param int|null $maxMessageBytes the largest request and response message;
     *        null for no client-side limit
     * @param float $connectTimeout seconds allowed to open a connection
     */
    public function __construct(
        string $address,
        private readonly ?string $apiKey = null,
        private readonly ?string $caFile = null,
        private readonly ?string $certFile = null,
        private readonly ?string $keyFile = null,
        private readonly ?int $maxMessageBytes = self::DEFAULT_MAX_MESSAGE_BYTES,
        private readonly float $connectTimeout = 5.0,
    ) {
        if (!extension_loaded('curl')) {
            throw new \RuntimeException('emitgate needs the curl extension (ext-curl)');
        }
        if (preg_match('#^(https?)://([^/]+)/*$#i', $address, $m) === 1) {
            $this->tls = strtolower($m[1]) === 'https';
            $this->baseUrl = strtolower($m[1]) . '://' . $m[2];
        } elseif (preg_match('#^[^/:]+:\d+$|^\[[0-9a-fA-F:.]+\]:\d+$#', $address) === 1) {
            $this->tls = false;
            $this->baseUrl = 'http://' . $address;
        } else {
            throw new \InvalidArgumentException(
                'address must be host:port, http://host:port or https://host:port, got "' . $address . '"'
            );
        }
    }

    /**
     * Closes the connection.
     */
    public function __destruct()
    {
        $this->close();
    }

    /**
     * Makes one unary call.
     *
     * @param string $method the full method path, e.g. `/emitgate.v1.EmitterService/Emit`
     * @param string $request the serialized request message
     * @param float $timeout the deadline in seconds, sent as `grpc-timeout`
     *        and enforced locally
     * @return string the serialized response message
     * @throws EmitgateException when the status is not OK or the call failed
     */
    public function call(string $method, string $request, float $timeout): string
    {
        if ($this->maxMessageBytes !== null && strlen($request) > $this->maxMessageBytes) {
            throw EmitgateException::fromStatus(
                Code::RESOURCE_EXHAUSTED,
                sprintf(
                    'request message is %d bytes, larger than the maximum of %d bytes',
                    strlen($request),
                    $this->maxMessageBytes
                ),
                local: true
            );
        }
        $timeoutMs = max(1, (int) ceil($timeout * 1000));
        $headers = [];
        $httpStatus = 0;
        $body = '';
        $tooLarge = false;
        $maxBody = $this->maxMessageBytes === null ? PHP_INT_MAX : $this->maxMessageBytes + 5;
        $requestHeaders = [
            'content-type: application/grpc',
            'te: trailers',
            'grpc-timeout: ' . self::grpcTimeout($timeout),
            'user-agent: ' . self::USER_AGENT,
            'accept:',
            'expect:',
        ];
        if ($this->apiKey !== null && $this->apiKey !== '') {
            $requestHeaders[] = 'authorization: Bearer ' . $this->apiKey;
        }
        $handle = $this->handle();
        curl_setopt_array($handle, [
            CURLOPT_URL => $this->baseUrl . $method,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => "\0" . pack('N', strlen($request)) . $request,
            CURLOPT_HTTPHEADER => $requestHeaders,
            CURLOPT_TIMEOUT_MS => $timeoutMs,
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$headers, &$httpStatus): int {
                $trimmed = rtrim($line, "\r\n");
                if (preg_match('#^HTTP/[0-9.]+\s+(\d{3})#', $trimmed, $m) === 1) {
                    $httpStatus = (int) $m[1];
                } elseif (($colon = strpos($trimmed, ':')) !== false) {
                    $name = strtolower(trim(substr($trimmed, 0, $colon)));
                    $headers[$name][] = trim(substr($trimmed, $colon + 1));
                }
                return strlen($line);
            },
            CURLOPT_WRITEFUNCTION => static function ($ch, string $chunk) use (&$body, &$tooLarge, $maxBody): int {
                if (strlen($body) + strlen($chunk) > $maxBody) {
                    $tooLarge = true;
                    return 0;
                }
                $body .= $chunk;
                return strlen($chunk);
            },
        ]);
        curl_exec($handle);
        $errno = curl_errno($handle);
        $error = curl_error($handle);
        $this->connections += (int) curl_getinfo($handle, CURLINFO_NUM_CONNECTS);
        $httpVersion = (int) curl_getinfo($handle, CURLINFO_HTTP_VERSION);
        $uploaded = (int) curl_getinfo($handle, CURLINFO_SIZE_UPLOAD_T);
        $requestBytes = strlen($request) + 5;

        if (isset($headers['grpc-status'])) {
            // The server's status wins, even when curl reports an error
            // afterwards (e.g. the stream was reset after a trailers-only
            // answer to a request it did not read to the end).
            $code = Code::fromInt((int) $headers['grpc-status'][0]);
            if ($code !== Code::OK) {
                throw $this->statusError($code, $headers);
            }
            if ($errno !== 0) {
                throw $this->curlError($errno, $error, $timeout, $tooLarge);
            }
            return $this->message($body);
        }
        if ($errno === self::CURLE_HTTP2_STREAM && $uploaded < $requestBytes && $httpStatus === 0) {
            // The server ended the stream before reading the whole request:
            // what gRPC servers do with a message over their size limit. They
            // send the status first, but libcurl before 8 drops it when a
            // RST_STREAM follows during the upload.
            throw EmitgateException::fromStatus(
                Code::RESOURCE_EXHAUSTED,
                sprintf(
                    'the gateway closed the stream after reading %d of the %d request bytes; '
                    . 'the message is probably over its maximum message size (%s)',
                    $uploaded,
                    $requestBytes,
                    $error
                ),
                local: true
            );
        }
        if ($errno !== 0) {
            throw $this->curlError($errno, $error, $timeout, $tooLarge);
        }
        if ($httpVersion !== CURL_HTTP_VERSION_2_0) {
            throw EmitgateException::fromStatus(
                Code::UNAVAILABLE,
                'the server did not answer over HTTP/2; is it a gRPC server?',
                local: true
            );
        }
        if ($httpStatus !== 200) {
            throw EmitgateException::fromStatus(
                self::httpToCode($httpStatus),
                'HTTP status ' . $httpStatus . ' without grpc-status',
                local: true
            );
        }
        throw EmitgateException::fromStatus(Code::INTERNAL, 'the answer has no grpc-status', local: true);
    }

    /**
     * Returns how many connections this transport has opened so far; it stays
     * at 1 while calls reuse the same HTTP/2 connection (when
     * reusesConnections() is true).
     *
     * @return int the number of connections opened
     */
    public function connectionCount(): int
    {
        return $this->connections;
    }

    /**
     * Tells whether consecutive calls share one connection. They do, except
     * for plaintext HTTP/2 (h2c) with libcurl older than 8.0.0: its reuse of
     * a prior-knowledge connection fails with "Error in the HTTP2 framing
     * layer" (curl bug #10634, fixed in 8.0.0; Debian 12 ships 7.88.1), so
     * there each call opens a fresh connection.
     *
     * @return bool true when connections are reused
     */
    public function reusesConnections(): bool
    {
        return $this->tls || version_compare((string) curl_version()['version'], '8.0.0', '>=');
    }

    /**
     * Closes the connection; the next call opens a new one.
     */
    public function close(): void
    {
        if ($this->handle !== null) {
            curl_close($this->handle);
            $this->handle = null;
        }
    }

    /**
     * Formats a timeout for the `grpc-timeout` header (at most 8 digits).
     *
     * @param float $seconds the timeout
     * @return string e.g. `1500m`, `250u`
     */
    public static function grpcTimeout(float $seconds): string
    {
        $micros = max(1, (int) ceil($seconds * 1e6));
        if ($micros < 100_000_000) {
            return $micros . 'u';
        }
        $millis = (int) ceil($seconds * 1e3);
        if ($millis < 100_000_000) {
            return $millis . 'm';
        }
        return min(99_999_999, (int) ceil($seconds)) . 'S';
    }

    private function handle(): \CurlHandle
    {
        if ($this->handle !== null) {
            return $this->handle;
        }
        $handle = curl_init();
        $options = [
            CURLOPT_HTTP_VERSION => $this->tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_TCP_NODELAY => true,
            CURLOPT_CONNECTTIMEOUT_MS => max(1, (int) ceil($this->connectTimeout * 1000)),
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_ENCODING => null,
        ];
        if (!$this->reusesConnections()) {
            $options[CURLOPT_FORBID_REUSE] = true;
        }
        if ($this->tls) {
            $options[CURLOPT_SSL_VERIFYPEER] = true;
            $options[CURLOPT_SSL_VERIFYHOST] = 2;
            if ($this->caFile !== null) {
                $options[CURLOPT_CAINFO] = $this->caFile;
            }
            if ($this->certFile !== null) {
                $options[CURLOPT_SSLCERT] = $this->certFile;
            }
            if ($this->keyFile !== null) {
                $options[CURLOPT_SSLKEY] = $this->keyFile;
            }
        }
        curl_setopt_array($handle, $options);
        return $this->handle = $handle;
    }

    /**
     * Extracts the one message of a response body.
     */
    private function message(string $body): string
    {
        if (strlen($body) < 5) {
            throw new InternalException(Code::INTERNAL, 'the answer has no message', true);
        }
        $header = unpack('Cflag/Nlength', substr($body, 0, 5));
        if ($header['flag'] !== 0) {
            throw new InternalException(Code::INTERNAL, 'the answer is compressed, which was not asked for', true);
        }
        if (strlen($body) !== 5 + $header['length']) {
            throw new InternalException(
                Code::INTERNAL,
                sprintf('the answer holds %d bytes, not one message of %d bytes', strlen($body), $header['length']),
                true
            );
        }
        return substr($body, 5);
    }

    /**
     * @param array<string, list<string>> $headers
     */
    private function statusError(Code $code, array $headers): EmitgateException
    {
        $message = rawurldecode($headers['grpc-message'][0] ?? '');
        $violations = [];
        $retryDelay = null;
        $limits = [];
        $details = $headers['grpc-status-details-bin'][0] ?? null;
        if ($details !== null) {
            $bytes = base64_decode(strtr($details, '-_', '+/'), false);
            try {
                $status = new Status();
                $status->mergeFromString($bytes === false ? '' : $bytes);
                if ($message === '') {
                    $message = $status->getMessage();
                }
                foreach ($status->getDetails() as $any) {
                    if ($any->getTypeUrl() === self::BAD_REQUEST_URL) {
                        $badRequest = new BadRequest();
                        $badRequest->mergeFromString($any->getValue());
                        foreach ($badRequest->getFieldViolations() as $v) {
                            $violations[] = new FieldViolation($v->getField(), $v->getDescription());
                        }
                    } elseif ($any->getTypeUrl() === self::ERROR_INFO_URL) {
                        $limits = Wire::limits($any->getValue()) + $limits;
                    } elseif ($any->getTypeUrl() === self::RETRY_INFO_URL) {
                        $retryInfo = new RetryInfo();
                        $retryInfo->mergeFromString($any->getValue());
                        $delay = $retryInfo->getRetryDelay();
                        if ($delay !== null) {
                            $retryDelay = $delay->getSeconds() + $delay->getNanos() / 1e9;
                        }
                    }
                }
            } catch (\Exception $e) {
                // Malformed details: keep the code and message, which are authoritative.
            }
        }
        return EmitgateException::fromStatus($code, $message, $violations, $retryDelay, limits: $limits);
    }

    private function curlError(int $errno, string $error, float $timeout, bool $tooLarge): EmitgateException
    {
        if ($errno === CURLE_OPERATION_TIMEDOUT) {
            return EmitgateException::fromStatus(
                Code::DEADLINE_EXCEEDED,
                sprintf('no answer within the %g s deadline (%s)', $timeout, $error),
                local: true
            );
        }
        if ($tooLarge) {
            return EmitgateException::fromStatus(
                Code::RESOURCE_EXHAUSTED,
                'the answer is larger than the maximum message size',
                local: true
            );
        }
        return EmitgateException::fromStatus(
            Code::UNAVAILABLE,
            sprintf('transport failure to %s: %s (curl error %d)', $this->baseUrl, $error, $errno),
            local: true
        );
    }

    private static function httpToCode(int $status): Code
    {
        return match ($status) {
            400 => Code::INTERNAL,
            401 => Code::UNAUTHENTICATED,
            403 => Code::PERMISSION_DENIED,
            404 => Code::UNIMPLEMENTED,
            429, 502, 503, 504 => Code::UNAVAILABLE,
            default => Code::UNKNOWN,
        };
    }
}
