<?php

declare(strict_types=1);

namespace Emitgate\Exception;

use Emitgate\Code;
use Emitgate\FieldViolation;

/**
 * The request was rejected as invalid (INVALID_ARGUMENT, and the rarer
 * FAILED_PRECONDITION and OUT_OF_RANGE): by the gateway, or by the SDK itself
 * when an argument cannot be encoded (isLocal()). Nothing was published.
 */
class InvalidArgumentException extends EmitgateException
{
    /** @var list<FieldViolation> */
    private array $violations;

    /**
     * @param Code $code the gRPC status code
     * @param string $statusMessage the status message
     * @param list<FieldViolation> $violations every invalid field
     * @param bool $local true when the SDK raised it before sending
     * @param float|null $retryDelay the google.rpc.RetryInfo delay in seconds, if any
     * @param \Throwable|null $previous the cause
     */
    public function __construct(
        Code $code,
        string $statusMessage,
        array $violations = [],
        bool $local = false,
        ?float $retryDelay = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($code, $statusMessage, $local, $retryDelay, $previous);
        $this->violations = $violations;
    }

    /**
     * Creates an SDK-side INVALID_ARGUMENT error for one field.
     *
     * @param string $field the field path, e.g. `args[1]`
     * @param string $description why the value is invalid
     * @param \Throwable|null $previous the cause
     * @return self the error, marked local
     */
    public static function local(string $field, string $description, ?\Throwable $previous = null): self
    {
        return new self(
            Code::INVALID_ARGUMENT,
            $field . ': ' . $description,
            [new FieldViolation($field, $description)],
            true,
            null,
            $previous
        );
    }

    /**
     * Returns every invalid field (google.rpc.BadRequest field violations).
     *
     * @return list<FieldViolation> the violations, possibly empty
     */
    public function getFieldViolations(): array
    {
        return $this->violations;
    }

    /**
     * Returns the paths of the invalid fields.
     *
     * @return list<string> e.g. ['event', 'rooms[2]']
     */
    public function getFields(): array
    {
        return array_map(static fn (FieldViolation $v): string => $v->field, $this->violations);
    }
}
