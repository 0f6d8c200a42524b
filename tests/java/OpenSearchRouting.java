import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.opensearch.Version;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.MetadataCreateIndexService;
import org.opensearch.cluster.routing.OperationRouting;
import org.opensearch.common.settings.Settings;

/**
 * OpenSearch's OperationRouting.generateShardId for each document id (the hex of its UTF-8
 * bytes, one per line), in an index of SHARDS primaries:
 *   OpenSearchRouting SHARDS [ROUTING_NUM_SHARDS]
 * Without ROUTING_NUM_SHARDS the index gets the default an index is created with. The first line
 * printed is "routing_num_shards N".
 */
public final class OpenSearchRouting {
    public static void main(String[] args) throws Exception {
        int shards = Integer.parseInt(args[0]);
        int routingShards = args.length > 1 ? Integer.parseInt(args[1])
            : MetadataCreateIndexService.calculateNumRoutingShards(shards, Version.CURRENT);
        IndexMetadata index = IndexMetadata.builder("skewcheck")
            .settings(Settings.builder()
                .put(IndexMetadata.SETTING_VERSION_CREATED, Version.CURRENT)
                .put(IndexMetadata.SETTING_NUMBER_OF_SHARDS, shards)
                .put(IndexMetadata.SETTING_NUMBER_OF_REPLICAS, 0))
            .setRoutingNumShards(routingShards)
            .build();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        out.write("routing_num_shards " + index.getRoutingNumShards() + "\n");
        String line;
        while ((line = in.readLine()) != null) {
            String id = new String(HexFormat.of().parseHex(line), StandardCharsets.UTF_8);
            out.write(Integer.toString(OperationRouting.generateShardId(index, id, null)));
            out.write('\n');
        }
        out.flush();
    }
}
