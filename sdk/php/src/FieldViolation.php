<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * One invalid field of a request, as google.rpc.BadRequest reports it.
 */
final class FieldViolation
{
    /**
     * @param string $field the path of the field, e.g. `items[3].emit.event` or `args[0].json`
     * @param string $description why the value is invalid
     */
    public function __construct(
        public readonly string $field,
        public readonly string $description,
    ) {
    }

    /**
     * Returns "field: description".
     *
     * @return string a one-line description
     */
    public function __toString(): string
    {
        return $this->field . ': ' . $this->description;
    }
}
