import com.fasterxml.jackson.databind.BeanDescription;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.introspect.AnnotatedMember;
import com.fasterxml.jackson.databind.introspect.BeanPropertyDefinition;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.strimzi.crdgenerator.annotations.Maximum;
import io.strimzi.crdgenerator.annotations.Minimum;
import io.strimzi.crdgenerator.annotations.Pattern;
import io.strimzi.crdgenerator.annotations.PresentInVersions;
import io.strimzi.crdgenerator.annotations.RequiredInVersions;
import java.io.File;
import java.lang.annotation.Annotation;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Checks Strimzi custom resources in YAML files against the Strimzi API model for kafka.strimzi.io/v1.
 *
 * Each Kafka, KafkaNodePool, KafkaTopic and KafkaUser document is read into the io.strimzi:api class the operator
 * itself uses (wrong types and unknown enum values fail there). The document is then walked next to
 * the object: every key must be a property of the model class (Strimzi keeps unknown keys aside instead
 * of failing, so they are reported here), must be present in v1 (@PresentInVersions), and must meet
 * @Minimum, @Maximum and @Pattern; properties required in v1 (@RequiredInVersions, @JsonProperty
 * required) must be set. Other documents are skipped. Prints one line per problem; exits 1 if any.
 *
 * Usage: java -cp CLASSPATH StrimziCheck FILE.yaml...
 */
public final class StrimziCheck {
    private static final String API_VERSION = "kafka.strimzi.io/v1";
    private static final List<String> VERSIONS = List.of("v1alpha1", "v1beta1", "v1beta2", "v1");
    private static final Map<String, String> MODEL_CLASSES = Map.of(
            "Kafka", "io.strimzi.api.kafka.model.kafka.Kafka",
            "KafkaNodePool", "io.strimzi.api.kafka.model.nodepool.KafkaNodePool",
            "KafkaTopic", "io.strimzi.api.kafka.model.topic.KafkaTopic",
            "KafkaUser", "io.strimzi.api.kafka.model.user.KafkaUser");

    private final ObjectMapper mapper = new ObjectMapper();
    private final List<String> problems = new ArrayList<>();
    private int checked;

    public static void main(String[] args) throws Exception {
        StrimziCheck check = new StrimziCheck();
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        for (String file : args) {
            Iterator<JsonNode> documents = yaml.readerFor(JsonNode.class).readValues(new File(file));
            while (documents.hasNext()) {
                check.document(file, documents.next());
            }
        }
        check.problems.forEach(System.out::println);
        System.out.printf("strimzi-check: %d resources checked, %d problems%n", check.checked, check.problems.size());
        System.exit(check.problems.isEmpty() ? 0 : 1);
    }

    private void document(String file, JsonNode doc) {
        if (doc == null || !doc.path("apiVersion").asText().startsWith("kafka.strimzi.io/")) {
            return;
        }
        String where = file + ": " + doc.path("kind").asText() + "/" + doc.path("metadata").path("name").asText();
        checked++;
        if (!API_VERSION.equals(doc.path("apiVersion").asText())) {
            problems.add(where + ": apiVersion " + doc.path("apiVersion").asText() + " is not " + API_VERSION);
            return;
        }
        String modelClass = MODEL_CLASSES.get(doc.path("kind").asText());
        if (modelClass == null) {
            problems.add(where + ": kind not covered by this check");
            return;
        }
        try {
            Object model = mapper.treeToValue(doc, Class.forName(modelClass));
            walk(where, "", doc, model);
        } catch (Exception e) {
            problems.add(where + ": not readable as " + modelClass + ": " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    private void walk(String where, String path, JsonNode node, Object value) throws Exception {
        if (value == null || value instanceof Map || value instanceof String || value instanceof Number
                || value instanceof Boolean || value instanceof Enum) {
            return;
        }
        if (node.isArray() && value instanceof List<?> items) {
            for (int i = 0; i < node.size() && i < items.size(); i++) {
                walk(where, path + "[" + i + "]", node.get(i), items.get(i));
            }
            return;
        }
        if (!node.isObject()) {
            return;
        }
        BeanDescription bean = mapper.getSerializationConfig().introspect(mapper.constructType(value.getClass()));
        Map<String, BeanPropertyDefinition> properties = new java.util.HashMap<>();
        for (BeanPropertyDefinition property : bean.findProperties()) {
            properties.put(property.getName(), property);
        }
        for (Iterator<Map.Entry<String, JsonNode>> fields = node.fields(); fields.hasNext(); ) {
            Map.Entry<String, JsonNode> field = fields.next();
            String fieldPath = path + "." + field.getKey();
            BeanPropertyDefinition property = properties.get(field.getKey());
            if (property == null || "additionalProperties".equals(field.getKey())) {
                problems.add(where + ": " + fieldPath + ": unknown field");
                continue;
            }
            PresentInVersions present = annotation(property, PresentInVersions.class);
            if (present != null && !inRange(present.value())) {
                problems.add(where + ": " + fieldPath + ": not in " + API_VERSION + " (only " + present.value() + ")");
            }
            checkValue(where, fieldPath, property, field.getValue());
            AnnotatedMember accessor = property.getAccessor();
            if (accessor != null) {
                walk(where, fieldPath, field.getValue(), accessor.getValue(value));
            }
        }
        for (BeanPropertyDefinition property : properties.values()) {
            RequiredInVersions required = annotation(property, RequiredInVersions.class);
            boolean isRequired = property.isRequired() || required != null && inRange(required.value());
            if (isRequired && !node.has(property.getName()) && !"status".equals(property.getName())) {
                problems.add(where + ": " + path + "." + property.getName() + ": required in " + API_VERSION);
            }
        }
    }

    private void checkValue(String where, String path, BeanPropertyDefinition property, JsonNode value) {
        Minimum minimum = annotation(property, Minimum.class);
        if (minimum != null && value.isNumber() && value.asLong() < minimum.value()) {
            problems.add(where + ": " + path + ": " + value + " is below the minimum " + minimum.value());
        }
        Maximum maximum = annotation(property, Maximum.class);
        if (maximum != null && value.isNumber() && value.asLong() > maximum.value()) {
            problems.add(where + ": " + path + ": " + value + " is above the maximum " + maximum.value());
        }
        Pattern pattern = annotation(property, Pattern.class);
        if (pattern != null && value.isTextual() && !java.util.regex.Pattern.compile(pattern.value()).matcher(value.asText()).find()) {
            problems.add(where + ": " + path + ": " + value + " does not match " + pattern.value());
        }
    }

    private static <A extends Annotation> A annotation(BeanPropertyDefinition property, Class<A> type) {
        for (AnnotatedMember member : new AnnotatedMember[] {property.getGetter(), property.getField(), property.getSetter()}) {
            if (member != null && member.getAnnotation(type) != null) {
                return member.getAnnotation(type);
            }
        }
        return null;
    }

    /** Strimzi version ranges: "v1beta2", "v1+", "v1alpha1-v1beta2", or "all". */
    private static boolean inRange(String range) {
        int v1 = VERSIONS.indexOf("v1");
        for (String part : range.split(",")) {
            String item = part.trim();
            if (item.equals("all") || item.equals("v1")) {
                return true;
            }
            int from = VERSIONS.indexOf(item.replaceAll("[+]$", "").split("-")[0]);
            if (item.endsWith("+") && from >= 0 && from <= v1) {
                return true;
            }
            String[] bounds = item.split("-");
            if (bounds.length == 2 && VERSIONS.indexOf(bounds[0]) <= v1 && v1 <= VERSIONS.indexOf(bounds[1])) {
                return true;
            }
        }
        return false;
    }
}
