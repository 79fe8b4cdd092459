<?php

declare(strict_types=1);

namespace Emitgate\Exception;

use Emitgate\Code;
use Emitgate\FieldViolation;

/**
 * A call failed: the gateway answered a non-OK gRPC status, the transport
 * failed, or the SDK refused the call before sending it.
 *
 * getCode() is the numeric gRPC status code; getStatusCode() the same as a
 * Code. Subclasses group the codes an application handles differently.
 */
class EmitgateException extends \RuntimeException
{
    private Code $statusCode;
    private string $statusMessage;
    private bool $local;
    private ?float $retryDelay;
    /** @var array<string, int> */
    private array $limits = [];

    /** google.rpc.ErrorInfo reason of a request over one of the gateway's limits. */
    public const LIMIT_EXCEEDED = 'LIMIT_EXCEEDED';

    /** google.rpc.ErrorInfo domain of the gateway's errors. */
    public const ERROR_DOMAIN = 'emitgate';

    /**
     * @param Code $code the gRPC status code
     * @param string $statusMessage the status message (grpc-message, percent-decoded)
     * @param bool $local true when the SDK raised it without a server answer
     *        (argument check, connection failure, local deadline)
     * @param float|null $retryDelay the google.rpc.RetryInfo delay in seconds, if any
     * @param \Throwable|null $previous the cause
     */
    public function __construct(
        Code $code,
        string $statusMessage,
        bool $local = false,
        ?float $retryDelay = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($code->name . ': ' . $statusMessage, $code->value, $previous);
        $this->statusCode = $code;
        $this->statusMessage = $statusMessage;
        $this->local = $local;
        $this->retryDelay = $retryDelay;
    }

    /**
     * Creates the exception class that matches a status code.
     *
     * @param Code $code the gRPC status code (not OK)
     * @param string $message the status message
     * @param list<FieldViolation> $violations google.rpc.BadRequest field violations
     * @param float|null $retryDelay the google.rpc.RetryInfo delay in seconds
     * @param bool $local true when the SDK raised it without a server answer
     * @param \Throwable|null $previous the cause
     * @param array<string, int> $limits the gateway limits the request went over
     *        (google.rpc.ErrorInfo metadata), by name
     * @return self an instance of the subclass for the code's family
     */
    public static function fromStatus(
        Code $code,
        string $message,
        array $violations = [],
        ?float $retryDelay = null,
        bool $local = false,
        ?\Throwable $previous = null,
        array $limits = [],
    ): self {
        $e = match ($code) {
            Code::INVALID_ARGUMENT, Code::OUT_OF_RANGE, Code::FAILED_PRECONDITION
                => new InvalidArgumentException($code, $message, $violations, $local, $retryDelay, $previous),
            Code::NOT_FOUND => new NotFoundException($code, $message, $local, $retryDelay, $previous),
            Code::UNAUTHENTICATED => new UnauthenticatedException($code, $message, $local, $retryDelay, $previous),
            Code::PERMISSION_DENIED => new PermissionDeniedException($code, $message, $local, $retryDelay, $previous),
            Code::RESOURCE_EXHAUSTED => new ResourceExhaustedException($code, $message, $local, $retryDelay, $previous),
            Code::UNAVAILABLE, Code::ABORTED
                => new UnavailableException($code, $message, $local, $retryDelay, $previous),
            Code::DEADLINE_EXCEEDED, Code::CANCELLED
                => new DeadlineExceededException($code, $message, $local, $retryDelay, $previous),
            default => new InternalException($code, $message, $local, $retryDelay, $previous),
        };
        $e->limits = $limits;
        return $e;
    }

    /**
     * Returns the gateway limits the request went over, by name, with the
     * value in force (`['max_batch_items' => 1000]`), read from the metadata
     * of the google.rpc.ErrorInfo detail (reason LIMIT_EXCEEDED, domain
     * emitgate), never from message text.
     *
     * @return array<string, int> the limits, empty when the gateway named none
     */
    public function getLimits(): array
    {
        return $this->limits;
    }

    /**
     * Returns the gRPC status code.
     *
     * @return Code the code (getCode() gives its numeric value)
     */
    public function getStatusCode(): Code
    {
        return $this->statusCode;
    }

    /**
     * Returns the status message without the code prefix of getMessage().
     *
     * @return string the grpc-message of the answer, or the SDK's own message
     */
    public function getStatusMessage(): string
    {
        return $this->statusMessage;
    }

    /**
     * Tells whether the SDK raised this error itself, without a server answer:
     * an argument it cannot encode, a connection failure, a local deadline.
     *
     * @return bool true for an SDK-side error
     */
    public function isLocal(): bool
    {
        return $this->local;
    }

    /**
     * Returns how long the server asked to wait before retrying
     * (google.rpc.RetryInfo), if it said so.
     *
     * @return float|null the delay in seconds, or null
     */
    public function getRetryDelay(): ?float
    {
        return $this->retryDelay;
    }

    /**
     * Tells whether retrying the same call later may succeed (UNAVAILABLE,
     * ABORTED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED).
     *
     * @return bool true for a transient failure
     */
    public function isRetryable(): bool
    {
        return in_array(
            $this->statusCode,
            [Code::UNAVAILABLE, Code::ABORTED, Code::RESOURCE_EXHAUSTED, Code::DEADLINE_EXCEEDED],
            true
        );
    }
}
