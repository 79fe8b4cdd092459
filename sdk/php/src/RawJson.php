<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * An argument given as JSON text holding exactly one JSON value, sent as is
 * (the gateway validates it). Use it to pass JSON you already have without
 * decoding it in PHP.
 */
final class RawJson
{
    /**
     * @param string $json JSON text holding exactly one value
     */
    public function __construct(public readonly string $json)
    {
    }
}
