//! A small writer of ONNX graphs on top of the `onnx-protobuf` messages.

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto::{self, Value};
use onnx_protobuf::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, NodeProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// Name of the symbolic batch dimension of the inputs and outputs.
pub const BATCH_DIM: &str = "batch";

/// One dimension of a graph input or output.
#[derive(Clone, Copy, Debug)]
pub enum Dim {
    Batch,
    Fixed(usize),
}

/// A graph under construction. Nodes are appended in topological order, as ONNX requires.
pub struct GraphBuilder {
    graph: GraphProto,
}

impl GraphBuilder {
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder {
            graph: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
        }
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) {
        self.graph.input.push(value_info(name, elem, dims));
    }

    pub fn output(&mut self, name: &str, elem: DataType, dims: &[Dim]) {
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// Appends a node named after its first output and returns it, for attributes.
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str]) -> &mut NodeProto {
        self.graph.node.push(NodeProto {
            name: outputs[0].to_string(),
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        });
        self.graph.node.last_mut().expect("a node was just pushed")
    }

    /// Appends a node with one output `output` and returns that name.
    pub fn op(&mut self, op: &str, inputs: &[&str], output: &str) -> String {
        self.node(op, inputs, &[output]);
        output.to_string()
    }

    pub fn initializer_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, DataType::FLOAT, dims, raw);
    }

    pub fn initializer_i8(&mut self, name: &str, dims: &[usize], data: &[i8]) {
        let raw = data.iter().map(|&v| v as u8).collect();
        self.initializer(name, DataType::INT8, dims, raw);
    }

    pub fn initializer_u8(&mut self, name: &str, dims: &[usize], data: &[u8]) {
        self.initializer(name, DataType::UINT8, dims, data.to_vec());
    }

    pub fn initializer_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, DataType::INT64, dims, raw);
    }

    fn initializer(&mut self, name: &str, elem: DataType, dims: &[usize], raw_data: Vec<u8>) {
        debug_assert_eq!(
            raw_data.len(),
            dims.iter().product::<usize>() * element_bytes(elem),
            "initializer {name} has the wrong byte count"
        );
        self.graph.initializer.push(TensorProto {
            name: name.to_string(),
            data_type: elem as i32,
            dims: dims.iter().map(|&d| d as i64).collect(),
            raw_data,
            ..Default::default()
        });
    }

    pub fn finish(self) -> GraphProto {
        self.graph
    }
}

/// Adds an integer attribute to `node`.
pub fn attr_int(node: &mut NodeProto, name: &str, value: i64) {
    node.attribute.push(AttributeProto {
        name: name.to_string(),
        type_: AttributeType::INT.into(),
        i: value,
        ..Default::default()
    });
}

fn element_bytes(elem: DataType) -> usize {
    match elem {
        DataType::FLOAT | DataType::INT32 => 4,
        DataType::INT64 => 8,
        DataType::INT8 | DataType::UINT8 => 1,
        other => unreachable!("the export writes no {other:?} initializer"),
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => dimension::Value::DimParam(BATCH_DIM.to_string()),
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: elem as i32,
        shape: Some(TensorShapeProto {
            dim,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.to_string(),
        type_: Some(TypeProto {
            value: Some(Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}
