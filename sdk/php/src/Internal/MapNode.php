<?php

declare(strict_types=1);

namespace Emitgate\Internal;

/**
 * A JSON object in a normalized argument tree: ordered string keys.
 *
 * @internal
 */
final class MapNode
{
    /**
     * @param list<array{0: string, 1: mixed}> $entries key/value pairs, in order
     */
    public function __construct(public readonly array $entries)
    {
    }
}
