<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * Marks a PHP string as binary data.
 *
 * PHP strings cannot tell text from bytes, so every plain string argument is
 * sent as a JSON string (and must be valid UTF-8). Wrap bytes in Binary to
 * deliver them as a Buffer (Node) / ArrayBuffer (browser), at the top level of
 * the arguments or anywhere inside arrays and objects.
 */
final class Binary
{
    /**
     * @param string $bytes the raw bytes
     */
    public function __construct(public readonly string $bytes)
    {
    }

    /**
     * Returns the raw bytes.
     *
     * @return string the bytes given to the constructor
     */
    public function __toString(): string
    {
        return $this->bytes;
    }
}
